"""Checks every loader applies to what a file holds: numeric arrays, uint8 pixels in range, whole-number
labels, distinct class names; each failure is a one-line ConfigError naming the file and what is valid."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError

log = logging.getLogger("convcoach")


def numeric_array(value: Any, path: Path, key: str) -> np.ndarray:
    """`value` (an array, or nested lists from a pickle) as a numeric numpy array: strings, ragged lists,
    integers beyond 64 bits and other objects are an error."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError):
        array = None
    if array is None or array.dtype == object:
        found = type(value).__name__
        if isinstance(value, list | tuple | np.ndarray):
            found += " of mixed values, non-numbers or integers beyond 64 bits"
        raise ConfigError(f"{path}: '{key}' must be a numeric array, found {found}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ConfigError(f"{path}: '{key}' must be a numeric array, found {array.dtype} values")
    return array


def image_shape(images: np.ndarray, path: Path, key: str) -> np.ndarray:
    """(N, C, H, W) images with H and W at least 1 (a zero size would divide by zero downstream)."""
    if images.ndim != 4 or images.shape[2] < 1 or images.shape[3] < 1:
        raise ConfigError(f"{path}: '{key}' holds images of shape {images.shape[1:]}; height and width must be >= 1")
    return images


def uint8_pixels(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    """Pixels as uint8: uint8 as stored, wider integers in 0..255, floats in [0, 1] scaled by 255; values
    out of range are an error (a cast would wrap 300 to 44 or -1 to 255)."""
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        if x.size and (x.min() < 0 or x.max() > 255):
            raise ConfigError(
                f"{path}: integer images in '{key}' must lie in 0..255 (found {x.min()}..{x.max()}); "
                "or store floats in [0, 1]"
            )
        return np.ascontiguousarray(x.astype(np.uint8))
    if not np.issubdtype(x.dtype, np.floating):
        raise ConfigError(f"{path}: '{key}' has dtype {x.dtype}; store uint8 (0..255) or floats in [0, 1]")
    if x.size and not np.isfinite(x).all():
        raise ConfigError(f"{path}: '{key}' holds NaN or infinite pixel values")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ConfigError(
            f"{path}: float images in '{key}' must lie in [0, 1] (found {x.min():.3g}..{x.max():.3g}); or store uint8"
        )
    return np.ascontiguousarray(np.round(x.astype(np.float64) * 255).astype(np.uint8))


def int_labels(y: np.ndarray, path: Path, key: str, num_classes: int | None = None) -> np.ndarray:
    """Class indices as a 1-D int64 array: integers, or floats with whole values (2.0, never 2.7 cut to 2),
    at least 0 and, given `num_classes`, below it."""
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise ConfigError(f"{path}: '{key}' must be a 1-D integer array, got {y.dtype} {y.shape}")
    if np.issubdtype(y.dtype, np.floating):
        broken = ~np.isfinite(y) | (y != np.round(y)) if y.size else np.zeros(0, bool)
        if broken.any():
            raise ConfigError(
                f"{path}: label {y[broken][0]:g} in '{key}' is not a whole number (labels are class indices 0..C-1)"
            )
    if y.size and y.min() < 0:
        raise ConfigError(f"{path}: negative label {int(y.min())} in '{key}' (labels must be 0..C-1)")
    if num_classes is not None and y.size and y.max() >= num_classes:
        raise ConfigError(
            f"{path}: label {y.max():.0f} in '{key}' is out of range for {num_classes} classes "
            f"(valid: 0..{num_classes - 1})"
        )
    if y.size and y.max() >= 2**62:  # int64's range: a bigger float would wrap
        raise ConfigError(f"{path}: label {y.max():.0f} in '{key}' is far beyond any class count")
    return y.astype(np.int64)


def class_names(names: Any, path: Path, key: str) -> list[str]:
    """A list (or 1-D array) of names as str (bytes decoded); duplicate names are an error naming them."""
    if isinstance(names, np.ndarray) and names.ndim != 1 or not isinstance(names, list | tuple | np.ndarray):
        shape = f"an array of shape {names.shape}" if isinstance(names, np.ndarray) else type(names).__name__
        raise ConfigError(f"{path}: '{key}' must be a list of class names, found {shape}")
    if not all(isinstance(n, str | bytes | int | float | np.generic) for n in names):
        raise ConfigError(f"{path}: '{key}' must hold names (strings), found {type(names[0]).__name__}")
    decoded = [n.decode(errors="replace") if isinstance(n, bytes) else str(n) for n in names]
    seen: set[str] = set()
    for name in decoded:
        if name in seen:
            raise ConfigError(f"{path}: class name '{name}' appears twice in '{key}'; class names must be distinct")
        seen.add(name)
    return decoded


def check_class_count(count: int, labels: np.ndarray, path: Path, what: str, fix: str, where: str) -> None:
    """`count` classes for `labels` that may use only some: many more classes than distinct labels (3,072
    names for 10 labels, or labels that are ids like 10^9) would build a head of empty classes, an error
    saying `what` and how to `fix` it; a few unused classes are a warning."""
    present = np.unique(labels)
    if count > 2 * len(present) + 10:
        shown = ", ".join(map(str, present[:5])) + (", ..." if len(present) > 5 else "")
        raise ConfigError(f"{path}: {what} but only {len(present)} distinct values occur ({shown}); {fix}")
    missing = sorted(set(range(count)) - set(present.tolist()))
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        log.warning("%s: classes %s have no images in %s (%d classes)", path, shown, where, count)
