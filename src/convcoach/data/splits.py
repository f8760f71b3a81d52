"""Seeded, stratified splits and subsets of a labelled set."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(keep, held) indices; each class gives round(fraction * count) samples to `held`."""
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_held = int(round(fraction * len(members)))
        if fraction > 0 and len(members) > 1:
            n_held = min(max(n_held, 1), len(members) - 1)
        held.append(members[:n_held])
        keep.append(members[n_held:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices of a seeded subset of `size` samples whose class proportions follow `labels`."""
    if size >= len(labels):
        return np.arange(len(labels))
    if size < 1:
        raise ConfigError(f"subset must be >= 1, got {size}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.floor(counts / counts.sum() * size).astype(int)
    # hand the remainder to the classes with the largest fractional parts
    remainder = counts / counts.sum() * size - quota
    for index in np.argsort(-remainder)[: size - quota.sum()]:
        quota[index] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == cls))[:q] for cls, q in zip(classes, quota)]
    return np.sort(np.concatenate(chosen))
