"""First-layer filters as images: conv kernels (or a linear layer's per-class templates) tiled in a grid."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from .layer_lookup import first_weighted_layer


def first_layer_filters(model: nn.Module, in_shape: tuple[int, int, int]) -> torch.Tensor:
    """(F, C, kh, kw) weights of the first conv; a first Linear layer on the raw image gives (F, C, H, W) templates."""
    _, layer = first_weighted_layer(model)
    weight = layer.weight.detach().float().cpu()
    if isinstance(layer, nn.Linear):
        channels, height, width = in_shape
        if weight.shape[1] != channels * height * width:
            raise ValueError(f"first Linear layer takes {weight.shape[1]} inputs, not an image of {in_shape}")
        return weight.view(-1, channels, height, width)
    return weight


def filter_tiles(weights: torch.Tensor) -> np.ndarray:
    """(F, C, h, w) -> (F, h, w, 1 or 3) in [0, 1]; each filter scaled on its own, zero weight = mid grey."""
    if weights.shape[1] not in (1, 3):
        weights = weights.mean(dim=1, keepdim=True)
    limit = weights.abs().flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    tiles = 0.5 + 0.5 * weights / limit
    return tiles.permute(0, 2, 3, 1).numpy()
