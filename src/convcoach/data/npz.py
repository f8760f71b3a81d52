"""The npz format: arrays x, y (optionally x_test, y_test, classes) become a source's RawData."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .bundle import RawData, SourceOptions
from .splits import stratified_split
from .validate import check_class_count, class_names, image_shape, int_labels, uint8_pixels

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
    x, y = _npz_images(arrays["x"], path, "x"), int_labels(arrays["y"], path, "y")
    if len(x) != len(y):
        raise ConfigError(f"{path}: 'x' has {len(x)} images but 'y' has {len(y)} labels")
    if not len(y):
        raise ConfigError(f"{path}: 'x' and 'y' are empty")
    classes = _named_classes(arrays["classes"], y, path) if "classes" in arrays else _index_classes(y, path)
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise ConfigError(
            f"{path}: has '{'x_test' if 'x_test' in arrays else 'y_test'}' "
            f"without '{'y_test' if 'x_test' in arrays else 'x_test'}'; give both or neither"
        )
    if "x_test" in arrays:
        tx, ty = _npz_images(arrays["x_test"], path, "x_test"), int_labels(arrays["y_test"], path, "y_test")
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
        int_labels(labels, path, key, len(classes))
    return RawData(x, y, tx, ty, classes, source=str(path.resolve()))  # load_data resizes to options.image_size


def _npz_images(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    elif not (x.ndim == 4 and x.shape[1] in (1, 3)):
        raise ConfigError(
            f"{path}: '{key}' has shape {x.shape}; expected (N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1, 3"
        )
    return uint8_pixels(image_shape(x, path, key), path, key)


def _index_classes(y: np.ndarray, path: Path) -> list[str]:
    """Class names 0..max(y) when labels are class indices; labels that skip most indices look like
    ids (e.g. 3, 7, 1000000000), which would make a head of empty classes: an error saying so."""
    count = int(y.max()) + 1
    fix = "labels must be class indices 0..C-1: remap them (np.unique(y, return_inverse=True))"
    check_class_count(count, y, path, f"labels run to {count - 1}", fix, "'y'")
    return [str(i) for i in range(count)]


def _named_classes(names: np.ndarray, y: np.ndarray, path: Path) -> list[str]:
    """The 'classes' array: distinct names, one per class the labels use (not thousands for ten labels)."""
    classes = class_names(names, path, "classes")
    if len(classes) > y.max():  # fewer names than labels: the range check names the label
        fix = "give one name per class, in label order"
        check_class_count(len(classes), y, path, f"'classes' names {len(classes)} classes", fix, "'y'")
    return classes
