"""A trained model ready to evaluate (model, normalizer, classes, its config) and the data splits it reads."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch.nn as nn

from ..config import TrainConfig
from ..data import Normalizer, SourceOptions, Split, load_data
from ..errors import ConfigError

log = logging.getLogger("convcoach")


@dataclass
class TrainedModel:
    """A model in eval mode with everything needed to feed it: normalizer, classes, input shape."""

    model: nn.Module
    normalizer: Normalizer
    classes: list[str]
    config: TrainConfig
    spec: dict[str, Any]
    path: Path

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return tuple(self.spec["in_shape"])


def load_split(
    trained: TrainedModel, data: str | None = None, data_dir: str | None = None, split: str = "test"
) -> Split:
    """A split of the model's data (or of `data`), checked against the model's classes and input shape."""
    config = trained.config
    spec = data or config.data
    bundle = load_data(
        spec,
        SourceOptions.from_config(
            config,
            data_dir=data_dir or config.data_dir,
            image_size=config.image_size or _square(trained.in_shape),
            channels=trained.in_shape[0],  # gray sets expanded to RGB for an ImageNet network, as in training
        ),
        config.val_fraction,
    )
    if bundle.num_classes != len(trained.classes):
        raise ConfigError(
            f"{trained.path} was trained for {len(trained.classes)} classes but '{spec}' has {bundle.num_classes}"
        )
    if list(bundle.classes) != list(trained.classes):
        differ = [f"{i}: {a} vs {b}" for i, (a, b) in enumerate(zip(trained.classes, bundle.classes)) if a != b]
        log.warning(
            "'%s' names its classes differently from %s (class %s); scores assume class i is the same in both",
            spec,
            trained.path,
            ", ".join(differ[:3]) + (f" and {len(differ) - 3} more" if len(differ) > 3 else ""),
        )
    if tuple(bundle.shape) != trained.in_shape:
        raise ConfigError(
            f"{trained.path} expects images of shape {trained.in_shape} (C, H, W) "
            f"but '{spec}' gives {tuple(bundle.shape)}"
        )
    chosen = {"test": bundle.test, "val": bundle.val, "train": bundle.train}.get(split)
    if chosen is None:
        raise ConfigError(f"split must be test, val or train (and exist); got '{split}'")
    return chosen


def _square(shape: tuple[int, int, int]) -> int | None:
    return shape[1] if shape[1] == shape[2] else None
