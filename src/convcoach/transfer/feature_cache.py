"""The linear probe at full speed: the frozen backbone runs once over each split (batched, bf16 where
the CPU has native bf16), its features are cached on disk under a key of backbone + images +
preprocessing (+ augmented views), and the new head is fit on them in seconds.

A cached probe is the `linear` strategy without epochs over the backbone: the lectures' "very little
data, similar dataset" cell, where only the classifier on top learns."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..data import Normalizer, Split
from ..data.augment import parse_augment
from ..data.fetch import cache_root
from ..errors import ConfigError
from ..models.stages import split_stages
from ..precision import cpu_has_native_bf16
from ..train.checkpoint import atomic_write_bytes

log = logging.getLogger("convcoach")

FORMAT = "convcoach-features-1"


def _hash_tensor(digest: Any, tensor: torch.Tensor) -> None:
    digest.update(str((tuple(tensor.shape), str(tensor.dtype))).encode())
    digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())


def backbone_digest(model: nn.Module) -> str:
    """BLAKE2 of every tensor up to the head (the head is what the probe replaces)."""
    anatomy = split_stages(model)
    head = {id(t) for t in anatomy.head.state_dict(keep_vars=True).values()}
    digest = hashlib.blake2b(digest_size=16)
    for key, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) not in head:
            digest.update(key.encode())
            _hash_tensor(digest, tensor)
    return digest.hexdigest()


def features_key(backbone: str, images: torch.Tensor, normalizer: Normalizer, view: str) -> str:
    """The cache key of one split's features: backbone + images + normalization + the view."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{FORMAT}|{backbone}|{normalizer.state_dict()}|{view}".encode())
    _hash_tensor(digest, images)
    return digest.hexdigest()


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    bf16 = precision == "bf16" or (precision == "auto" and (device.type == "cuda" or cpu_has_native_bf16()))
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


@torch.no_grad()
def forward_features(
    model: nn.Module,
    images: torch.Tensor,
    normalizer: Normalizer,
    batch_size: int = 64,
    augment: list[str] | None = None,
    seed: int = 0,
    precision: str = "auto",
) -> torch.Tensor:
    """(N, D) float32 penultimate features of uint8 images, in eval mode; `augment` draws one
    seeded augmented view (the training pipeline's ops on the normalized batch)."""
    anatomy = split_stages(model)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    augmenter = parse_augment(augment) if augment else None
    if augmenter is not None and augmenter.needs_fit:
        augmenter.fit(images, normalizer)
    generator = torch.Generator(device=device).manual_seed(seed)
    model.to(memory_format=torch.channels_last)  # oneDNN's fast layout: 2x the images/s of NCHW on a CPU
    chunks = []
    try:
        for start in range(0, len(images), batch_size):
            x = normalizer(images[start : start + batch_size].to(device))
            if augmenter is not None:
                x = augmenter(x, generator)
            x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device, precision):
                chunks.append(anatomy.run(x).flatten(1).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0)


@dataclass
class CachedFeatures:
    features: torch.Tensor  # (N, D) float32
    path: Path
    hit: bool
    seconds: float  # the forward pass (0 on a hit: the load is not counted)


def cached_features(
    model: nn.Module,
    split: Split,
    normalizer: Normalizer,
    view: int = 0,
    augment: list[str] | None = None,
    seed: int = 0,
    batch_size: int = 64,
    precision: str = "auto",
    backbone: str | None = None,
    folder: Path | None = None,
) -> CachedFeatures:
    """The split's features from the cache, or computed once and cached atomically. View 0 is the
    plain images; view k >= 1 is the k-th seeded augmented view (`augment` ops)."""
    if split.images is None:
        raise ConfigError(
            "linear probes on cached features need the images in memory (this set streams from disk): "
            "use --head-init random, or raise --memory-limit-gb"
        )
    if view and not augment:
        raise ConfigError("augmented views need an augmentation (--augment OPS)")
    backbone = backbone or backbone_digest(model)
    label = f"view{view}:{','.join(augment or [])}:{seed}" if view else "plain"
    folder = folder or cache_root() / "features"
    path = folder / f"{features_key(backbone, split.images, normalizer, label)}.pt"
    if path.is_file():
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if payload.get("format") == FORMAT and payload["features"].shape[0] == len(split):
                return CachedFeatures(payload["features"], path, True, 0.0)
        except Exception as exc:  # a damaged cache entry is recomputed, never trusted
            log.warning("%s: unreadable feature cache (%s); recomputing", path, type(exc).__name__)
    start = time.perf_counter()
    view_seed = seed * 1000 + view
    features = forward_features(
        model, split.images, normalizer, batch_size, augment if view else None, view_seed, precision
    )
    seconds = time.perf_counter() - start
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda handle: torch.save({"format": FORMAT, "features": features}, handle))
    return CachedFeatures(features, path, False, seconds)
