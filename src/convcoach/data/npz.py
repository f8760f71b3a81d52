"""The npz format: arrays x, y (optionally x_test, y_test, classes) become a source's RawData."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .bundle import RawData, SourceOptions
from .splits import stratified_split

log = logging.getLogger("convcoach")


def read_npz(arg: str | None, options: SourceOptions) -> RawData:
    """x/y arrays (optionally x_test/y_test, classes); images NHW, NHWC or NCHW, uint8 or floats in [0, 1]."""
    if not arg:
        raise ConfigError("npz needs a path: --data npz:PATH")
    path = Path(arg)
    if not path.is_file():
        raise ConfigError(f"npz file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as exc:
        raise ConfigError(f"{path}: truncated or corrupt npz file ({type(exc).__name__}: {exc})") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise ConfigError(f"{path}: missing array '{key}' (found: {', '.join(arrays) or 'none'})")
    x, y = _npz_images(arrays["x"], path, "x"), _npz_labels(arrays["y"], path, "y")
    if len(x) != len(y):
        raise ConfigError(f"{path}: 'x' has {len(x)} images but 'y' has {len(y)} labels")
    if not len(y):
        raise ConfigError(f"{path}: 'x' and 'y' are empty")
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else _index_classes(y, path)
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise ConfigError(
            f"{path}: has '{'x_test' if 'x_test' in arrays else 'y_test'}' "
            f"without '{'y_test' if 'x_test' in arrays else 'x_test'}'; give both or neither"
        )
    if "x_test" in arrays:
        tx, ty = _npz_images(arrays["x_test"], path, "x_test"), _npz_labels(arrays["y_test"], path, "y_test")
        if tx.shape[1:] != x.shape[1:]:
            raise ConfigError(
                f"{path}: 'x_test' images are {tx.shape[1:]} (C, H, W) "
                f"but 'x' images are {x.shape[1:]}; store both alike"
            )
        if len(tx) != len(ty):
            raise ConfigError(f"{path}: 'x_test' has {len(tx)} images but 'y_test' has {len(ty)} labels")
    else:
        keep, held = stratified_split(y, 0.2, seed=12345)
        x, y, tx, ty = x[keep], y[keep], x[held], y[held]
    for labels, key in ((y, "y"), (ty, "y_test")):
        if labels.size and labels.max() >= len(classes):
            raise ConfigError(
                f"{path}: label {int(labels.max())} in '{key}' is out of range for {len(classes)} classes "
                f"(valid: 0..{len(classes) - 1})"
            )
    return RawData(x, y, tx, ty, classes)  # load_data resizes to options.image_size


def _npz_images(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    elif not (x.ndim == 4 and x.shape[1] in (1, 3)):
        raise ConfigError(
            f"{path}: '{key}' has shape {x.shape}; expected (N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1, 3"
        )
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:  # pixel values 0..255 in a wider integer type
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


def _index_classes(y: np.ndarray, path: Path) -> list[str]:
    """Class names 0..max(y) when labels are class indices; labels that skip most indices look like
    ids (e.g. 3, 7, 1000000000), which would make a head of empty classes: an error saying so."""
    count, present = int(y.max()) + 1, np.unique(y)
    if count > 2 * len(present) + 10:
        raise ConfigError(
            f"{path}: labels run to {count - 1} but only {len(present)} distinct values occur "
            f"({', '.join(map(str, present[:5]))}"
            f"{', ...' if len(present) > 5 else ''}); labels must be class indices 0..C-1: "
            "remap them (np.unique(y, return_inverse=True))"
        )
    if count > len(present):
        missing = sorted(set(range(count)) - set(present.tolist()))
        log.warning(
            "%s: classes %s have no images in 'y' (labels run 0..%d)",
            path,
            ", ".join(map(str, missing[:10])),
            count - 1,
        )
    return [str(i) for i in range(count)]


def _npz_labels(y: np.ndarray, path: Path, key: str) -> np.ndarray:
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"{path}: '{key}' must be a 1-D integer array, got {y.dtype} {y.shape}")
    if y.size and y.min() < 0:
        raise ConfigError(f"{path}: negative label {int(y.min())} in '{key}' (labels must be 0..C-1)")
    return y.astype(np.int64)
