"""Model footprints counted on the meta device: the bounds that stop a resource bomb before it allocates."""

from __future__ import annotations

import importlib

import pytest
import torch
from torch import nn

from convcoach.errors import ConfigError
from convcoach.models import create_model, model_footprint
from convcoach.models.footprint import MAX_PARAMETERS, Footprint, check_fits, footprint


def test_counts_match_the_real_model_and_a_worked_example():
    found = model_footprint("cnn", (1, 8, 8), 3, depth=1, width=4)
    real = create_model("cnn", (1, 8, 8), 3, depth=1, width=4)
    assert found.parameters == sum(p.numel() for p in real.parameters())

    def two_layers(in_shape, classes):
        return nn.Sequential(nn.Conv2d(in_shape[0], 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 4 * 4, classes))

    # conv output 2x4x4 = 32, flatten 32, linear 5: 69 elements per image; 1*2*9+2 + 32*5+5 = 185 parameters
    assert footprint(two_layers, (1, 4, 4), 5) == Footprint(185, 69)
    # weights with gradients and two optimizer states, and each activation saved and given a gradient
    assert Footprint(185, 69).training_bytes(batch_size=10) == 4 * (185 * 4 + 2 * 10 * 69)


def test_a_model_too_large_to_build_is_an_error_before_any_allocation():
    with pytest.raises(ConfigError, match=r"has a layer larger than a tensor can hold: a smaller --width or --depth"):
        create_model("cnn", (1, 8, 8), 3, depth=100000)
    with pytest.raises(ConfigError, match=rf"has 4,834,066,667 parameters .* at most {MAX_PARAMETERS:,}"):
        create_model("cnn", (1, 8, 8), 3, depth=12, width=8)


def test_training_that_needs_more_memory_than_the_device_has_is_an_error(monkeypatch):
    fp = importlib.import_module("convcoach.models.footprint")  # the package re-exports a function of that name

    monkeypatch.setattr(fp, "available_bytes", lambda device: 2**30)
    found = Footprint(1000, 300_000_000)
    with pytest.raises(
        ConfigError,
        match=r"model 'cnn' needs about 572\.2 GiB to train at batch_size 256 \(1,000 parameters, "
        r"300,000,000 activations per image\); cpu has 1\.0 GiB free",
    ):
        check_fits("model 'cnn'", found, 256, torch.device("cpu"))
    check_fits("model 'cnn'", Footprint(1000, 1000), 256, torch.device("cpu"))  # 2 MB fits
