"""Embeddings from a layer of a trained network: globally average-pooled stage outputs, the head's input, or logits."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..data import Normalizer, Split
from ..errors import ConfigError
from ..models.stages import Anatomy, split_stages

PENULTIMATE, LOGITS = "penultimate", "logits"


def layer_names(anatomy: Anatomy) -> list[str]:
    return [*anatomy.names, PENULTIMATE, LOGITS]


def pooled(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C) by global average pooling; vectors pass through."""
    return x.mean(dim=(2, 3)) if x.dim() == 4 else x.flatten(1)


def _images(split: Split, what: str) -> torch.Tensor:
    if split.images is None:
        raise ConfigError(
            f"{what}: the data streams from disk; features and kNN need it in memory (raise --memory-limit-gb)"
        )
    return split.images


@torch.no_grad()
def stage_features(
    model: nn.Module, split: Split, normalizer: Normalizer, layers: list[str], batch_size: int = 512
) -> dict[str, torch.Tensor]:
    """{layer: (N, D) float32 on the CPU} for several layers in one pass over the split."""
    anatomy = split_stages(model)
    known = layer_names(anatomy)
    for layer in layers:
        if layer not in known:
            raise ConfigError(f"unknown layer '{layer}'; layers of this model: {', '.join(known)}")
    images = _images(split, "features")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    chunks: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    for start in range(0, len(images), batch_size):
        x = normalizer(images[start : start + batch_size].to(device))
        for name, modules in anatomy.stages:
            for module in modules:
                x = module(x)
            if name in chunks:
                chunks[name].append(pooled(x).float().cpu())
        for module in anatomy.neck:
            x = module(x)
        if PENULTIMATE in chunks:
            chunks[PENULTIMATE].append(x.flatten(1).float().cpu())
        if LOGITS in chunks:
            chunks[LOGITS].append(anatomy.head(x).float().cpu())
    model.train(was_training)
    return {layer: torch.cat(parts) if parts else torch.empty(0) for layer, parts in chunks.items()}


def embed(
    model: nn.Module, split: Split, normalizer: Normalizer, layer: str = PENULTIMATE, batch_size: int = 512
) -> torch.Tensor:
    """(N, D) embeddings of one split at `layer`."""
    return stage_features(model, split, normalizer, [layer], batch_size)[layer]


def pixels(split: Split) -> torch.Tensor:
    """Raw pixels as (N, C*H*W) float32 in 0..255: the lectures' kNN input."""
    return _images(split, "kNN on pixels").flatten(1).float()
