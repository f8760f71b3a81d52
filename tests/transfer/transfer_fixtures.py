"""Fixtures the transfer tests share: a small BatchNorm cnn trained on 3-class blobs, and 4-class blobs to move to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_blobs, small_config

from convcoach.train.loop import Trainer


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A small cnn with BatchNorm trained on 3-class gray blobs (12x12)."""
    root = tmp_path_factory.mktemp("pretrained")
    x, y = make_blobs()
    np.savez(root / "blobs.npz", x=x, y=y)
    Trainer(small_config(root / "blobs.npz", root / "run", report=False)).fit()
    return root / "run"


@pytest.fixture
def new_data(tmp_path) -> Path:
    """Four classes instead of three: the head must be replaced."""
    x, y = make_blobs(n_per_class=30, classes=4, seed=3)
    path = tmp_path / "blobs4.npz"
    np.savez(path, x=x, y=y)
    return path
