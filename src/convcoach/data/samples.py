"""Pick images from a split by index or one per class; streamed splits are decoded from disk."""

from __future__ import annotations

import numpy as np
import torch

from .bundle import Split
from .imagefolder import load_image


def split_images(split: Split, indices: list[int]) -> torch.Tensor:
    """uint8 (N, C, H, W) images at `indices`."""
    if split.images is not None:
        return split.images[torch.as_tensor(indices, dtype=torch.long)]
    channels, height, width = split.shape
    return torch.stack(
        [torch.from_numpy(np.ascontiguousarray(load_image(split.files[i], channels, (height, width)))) for i in indices]
    )


def per_class_indices(labels: torch.Tensor, num_classes: int, per_class: int) -> list[list[int]]:
    """The first `per_class` indices of each class, in split order."""
    chosen: list[list[int]] = [[] for _ in range(num_classes)]
    for index, label in enumerate(labels.tolist()):
        if len(chosen[label]) < per_class:
            chosen[label].append(index)
        if all(len(c) >= per_class for c in chosen):
            break
    return chosen


def examples(labels: torch.Tensor, num_classes: int, count: int) -> list[int]:
    """`count` indices covering as many classes as possible (one per class, then round-robin)."""
    per_class = per_class_indices(labels, num_classes, max(1, -(-count // max(1, num_classes))))
    ordered = [c[r] for r in range(max((len(c) for c in per_class), default=0)) for c in per_class if r < len(c)]
    return ordered[:count]
