"""What the data layer passes around: a source's RawData, the run's DataBundle of Splits, and the
SourceOptions that say where and how a dataset is read."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass
class Split:
    """Images as uint8 (N, C, H, W) in memory, or `files` to stream from disk."""

    images: torch.Tensor | None
    labels: torch.Tensor
    files: list[Path] | None = None
    shape: tuple[int, int, int] | None = None  # (C, H, W) of streamed files
    mapped: bool = False  # images memory-mapped from disk (a set too large for memory): batches move, not the set

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class RawData:
    """What a source returns, before splitting: numpy uint8 images (N, C, H, W) and int64 labels."""

    train_x: np.ndarray | None
    train_y: np.ndarray
    test_x: np.ndarray | None
    test_y: np.ndarray
    classes: list[str]
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None
    train_files: list[Path] | None = None  # set when streaming from disk
    test_files: list[Path] | None = None
    val_files: list[Path] | None = None
    shape: tuple[int, int, int] | None = None  # (C, H, W) when streaming
    skipped: list[str] = field(default_factory=list)
    source: str | None = None  # where it was read: a folder, a file, or a bundled set (env.json)
    source_shape: tuple[int, int, int] | None = None  # (C, H, W) as stored (a folder: its first file's size)


@dataclass
class DataBundle:
    """The splits a run uses; the test split is read only by the final evaluation."""

    name: str
    classes: list[str]
    train: Split
    val: Split | None
    test: Split
    shape: tuple[int, int, int]
    skipped: list[str] = field(default_factory=list)
    source: str | None = None  # where it was read (RawData.source)
    source_shape: tuple[int, int, int] | None = None  # before --image-size and --channels (RawData.source_shape)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def streaming(self) -> bool:
        return self.train.images is None


@dataclass
class SourceOptions:
    """Where and how a dataset is read: the options of a run's config that concern its source."""

    data_dir: str | None = None
    image_size: int | None = None
    channels: int | None = None  # convert to 1 (gray) or 3 (RGB); None keeps the source's
    strict: bool = False
    memory_limit_gb: float = 4.0
    seed: int = 0

    @classmethod
    def from_config(cls, config: Any, **changes: Any) -> SourceOptions:
        """The options `config` (a TrainConfig or a command's flags) sets, with `changes` on top;
        a field `config` lacks keeps its default."""
        values = {f.name: getattr(config, f.name, f.default) for f in dataclasses.fields(cls)}
        return cls(**{**values, **changes})
