"""What the diagnosis reads besides the curves, gathered once at the end of training: the training
split's class counts, repeated images within it and test images copied from it (by hash), files the
loader skipped, and the model's BatchNorm layers and dropout."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn as nn

if TYPE_CHECKING:
    from ..data import DataBundle
    from ..train.loop import Trainer


def image_hashes(images: torch.Tensor | None) -> list[bytes]:
    """A 16-byte digest per image: equal digests are byte-identical images."""
    if images is None or not len(images):
        return []
    flat = images.reshape(len(images), -1).numpy()
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]


def data_facts(bundle: DataBundle) -> dict[str, Any]:
    """Class counts of the training split, its repeated images and the test images found in it."""
    facts: dict[str, Any] = {
        "train_class_counts": np.bincount(bundle.train.labels.numpy(), minlength=bundle.num_classes).tolist(),
        "skipped_files": len(bundle.skipped),
    }
    if bundle.train.images is None or bundle.test.images is None:
        return facts  # streamed from disk: hashing would read every file again
    train = image_hashes(bundle.train.images)
    seen = set(train)
    if bundle.val is not None and bundle.val.images is not None:
        val = image_hashes(bundle.val.images)
        facts["val_in_train"] = sum(digest in seen for digest in val)
        seen.update(val)
    test = image_hashes(bundle.test.images)
    facts["repeated_in_train"] = len(train) - len(set(train))
    facts["test_in_train"] = sum(digest in seen for digest in test)
    facts["pixel_shift"] = pixel_shift(bundle.train.images, bundle.test.images)
    if bundle.val is not None and bundle.val.images is not None:
        facts["near_copies"] = near_copies(bundle.train.images, bundle.val.images, bundle.test.images)
    return facts


NEAR_SIDE = 16  # fingerprints: each image pooled to at most 16 x 16 px, centred and scaled to unit norm
NEAR_QUERIES = 2000  # validation and test images compared (evenly spaced)
NEAR_TRAIN = 200_000  # training images they are compared with (evenly spaced)


def _fingerprints(images: torch.Tensor, limit: int) -> torch.Tensor:
    """(N, d) unit vectors of the images pooled to NEAR_SIDE px (brightness and contrast taken out)."""
    picked = images[:: -(-len(images) // limit)]
    side = min(NEAR_SIDE, *picked.shape[-2:])
    parts = []
    for start in range(0, len(picked), 4096):
        pooled = torch.nn.functional.adaptive_avg_pool2d(picked[start : start + 4096].float(), side).flatten(1)
        pooled = pooled - pooled.mean(dim=1, keepdim=True)
        parts.append(pooled / pooled.norm(dim=1, keepdim=True).clamp_min(1e-6))
    return torch.cat(parts)


def _nearest(queries: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """Each query's largest cosine similarity to the pool."""
    best = torch.full((len(queries),), -1.0)
    for start in range(0, len(pool), 16384):
        best = torch.maximum(best, (queries @ pool[start : start + 16384].T).max(dim=1).values)
    return best


def _nearest_either_way(queries: torch.Tensor, pool: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Each query's largest cosine to the pool, as it is or mirrored left to right (a mirrored copy is a
    copy: flipping is the commonest augmentation, and scraped sets hold both)."""
    side = min(NEAR_SIDE, *images.shape[-2:])
    mirrored = queries.reshape(len(queries), -1, side, side).flip(-1).reshape(len(queries), -1)
    return torch.maximum(_nearest(queries, pool), _nearest(mirrored, pool))


def near_copies(train: torch.Tensor, val: torch.Tensor, test: torch.Tensor) -> dict[str, Any] | None:
    """Near-copies between the splits that hashing misses (re-encoded, noised, resized, mirrored): each
    validation and test image's nearest training image, as it is or mirrored, by the cosine of their
    fingerprints. Validation is drawn from the training split, so its similarities are the baseline:
    `test_near` is the share of test images closer to training than 95% of validation images are (~5%
    when the test split is drawn alike; near-copies push it up), `val_near` the share of validation
    images closer than 95% of test images (near-duplicates within the training split push it up, and
    so does a test split unlike training: `val_median` against `test_q99` tells the two apart)."""
    if len(val) < 50 or len(test) < 50 or val.shape[1:] != train.shape[1:] or test.shape[1:] != train.shape[1:]:
        return None
    pool = _fingerprints(train, NEAR_TRAIN)
    to_val = _nearest_either_way(_fingerprints(val, NEAR_QUERIES), pool, val)
    to_test = _nearest_either_way(_fingerprints(test, NEAR_QUERIES), pool, test)
    val_line, test_line = float(to_val.quantile(0.95)), float(to_test.quantile(0.95))
    return {
        "test_near": round(float((to_test > val_line).float().mean()), 4),
        "val_near": round(float((to_val > test_line).float().mean()), 4),
        "test_count": len(to_test),
        "val_count": len(to_val),
        "val_line": round(val_line, 4),
        "val_median": round(float(to_val.median()), 4),
        "test_q99": round(float(to_test.quantile(0.99)), 4),
    }


CHUNK_BYTES = 64 << 20
SHIFT_Z = 6.0  # a pixel's mean this many standard errors apart between the splits...
SHIFT_EFFECT = 0.2  # ...and by this share of its spread over both: a real difference, not sampling noise
SHIFT_IMAGES = 20_000  # at most this many images of a split, evenly spaced (folders come sorted by class)


def _pixel_moments(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per pixel and channel: mean and variance over the images (uint8 values, float64 sums in chunks
    of ~64 MB), and how many images they came from."""
    picked, size = images[:: -(-len(images) // SHIFT_IMAGES)], images[0].numel()
    total = torch.zeros(size, dtype=torch.float64)
    squares = torch.zeros_like(total)
    chunk = max(1, CHUNK_BYTES // (8 * size))
    for start in range(0, len(picked), chunk):
        part = picked[start : start + chunk].reshape(-1, size).double()
        total += part.sum(dim=0)
        squares += (part * part).sum(dim=0)
    mean = total / len(picked)
    return mean, (squares / len(picked) - mean * mean).clamp_min(0), len(picked)


def pixel_shift(train: torch.Tensor, test: torch.Tensor) -> dict[str, Any] | None:
    """Where the test images differ from the training images pixel by pixel: the pixels (and channels)
    whose mean differs by more than SHIFT_Z standard errors and SHIFT_EFFECT of their spread, the most
    different one (row, column[, channel], its means as 0-1), and each split's mean brightness. Drawn
    from one source, the splits differ at no pixel (Fashion-MNIST's own: at most 2.5 standard errors)."""
    if not len(train) or not len(test) or train.shape[1:] != test.shape[1:]:
        return None
    (train_mean, train_var, n), (test_mean, test_var, m) = _pixel_moments(train), _pixel_moments(test)
    diff = train_mean - test_mean
    z = diff / torch.sqrt(train_var / n + test_var / m + 1.0 / min(n, m))  # +1/n: a constant pixel
    spread = torch.sqrt((train_var * n + test_var * m) / (n + m) + diff**2 * n * m / (n + m) ** 2)
    shifted = (z.abs() > SHIFT_Z) & (diff.abs() > SHIFT_EFFECT * spread)
    top = int(z.abs().argmax())
    channel, row, column = np.unravel_index(top, tuple(train.shape[1:]))
    return {
        "shifted": int(shifted.sum()),
        "entries": len(z),
        "max_z": round(float(z[top].abs()), 1),
        "at": [int(row), int(column)] + ([int(channel)] if train.shape[1] > 1 else []),  # row, column[, channel]
        "train_mean": round(float(train_mean[top]) / 255, 3),
        "test_mean": round(float(test_mean[top]) / 255, 3),
        "brightness": [round(float(train_mean.mean()) / 255, 3), round(float(test_mean.mean()) / 255, 3)],
    }


def model_facts(model: nn.Module) -> dict[str, Any]:
    """The normalization and dropout the model really has (a user model may differ from the options)."""
    batchnorm = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    dropout = [m.p for m in model.modules() if isinstance(m, nn.Dropout | nn.Dropout2d)]
    return {
        "batchnorm_layers": len(batchnorm),
        "batchnorm_momentum": min((m.momentum for m in batchnorm if m.momentum is not None), default=None),
        "dropout": max(dropout, default=0.0),
    }


def _chunks(x: torch.Tensor, size: int) -> list[tuple[int, torch.Tensor]]:
    """Batches of `size`; a last batch of one image joins the one before (BatchNorm needs two in train mode)."""
    starts = list(range(0, len(x), size))
    if len(starts) > 1 and len(x) - starts[-1] == 1:
        starts.pop()
    return [(start, x[start : (starts[i + 1] if i + 1 < len(starts) else len(x))]) for i, start in enumerate(starts)]


@torch.no_grad()
def accuracy_by_mode(trainer: Trainer, limit: int = 512) -> dict[str, float] | None:
    """Accuracy of the model on up to `limit` training images (no augmentation) in train mode (its
    buffers restored after: the forward moves BatchNorm's running statistics) and in eval mode. A
    large gap means BatchNorm's running statistics (or dropout) make evaluation differ from training."""
    from ..train.distributed import unwrap

    train = trainer.data.train
    model = unwrap(trainer.model)
    if train.images is None or not len(train):
        return None
    if trainer.dist.enabled and any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules()):
        return None  # a train-mode forward would start a collective the other ranks never join
    x = trainer.normalizer(train.images[:limit].to(trainer.device))
    y = train.labels[:limit].to(trainer.device)
    if trainer.config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    was_training = model.training
    buffers = [(buffer, buffer.clone()) for buffer in model.buffers()]
    # one batch for small images (as before); 224 px images in batches of at most 64 MB of input
    size = max(trainer.config.batch_size, CHUNK_BYTES // max(x[0].numel() * x.element_size(), 1))

    def correct(mode: bool) -> float:
        model.train(mode)
        return sum((model(part).argmax(dim=1) == y[i : i + len(part)]).sum().item() for i, part in _chunks(x, size))

    train_mode = correct(True) / len(y)
    for buffer, saved in buffers:
        buffer.copy_(saved)
    eval_mode = correct(False) / len(y)
    model.train(was_training)
    return {"train": train_mode, "eval": eval_mode}
