"""Reader for the CIFAR-10/100 python-pickle batches, with an unpickler that builds only arrays."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .validate import class_names, int_labels, numeric_array, uint8_pixels

# A pickle can run arbitrary code; these are the only globals CIFAR batches need (everything else in a
# batch, dicts, lists, str, bytes, numbers, is built by pickle opcodes without a global)
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    # pickle protocol 5 (the default from Python 3.14) stores arrays via frombuffer
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
    ("builtins", "bytearray"),
}


def _empty_array(subtype: type, shape: tuple, dtype: bytes) -> np.ndarray:
    """numpy's _reconstruct as ndarray.__reduce__ calls it: an empty array that __setstate__ fills from the
    pickle's own bytes (any other shape would allocate what the file does not hold)."""
    if subtype is not np.ndarray or tuple(shape) != (0,):
        raise pickle.UnpicklingError(f"refusing to reconstruct a {getattr(subtype, '__name__', subtype)} of {shape}")
    return np.ndarray((0,), dtype=np.dtype(dtype))


def _bytes_copy(*args: object) -> bytearray:
    """bytearray from bytes or text only: bytearray(10**12) would allocate a terabyte."""
    if not args or isinstance(args[0], int):
        raise pickle.UnpicklingError("refusing bytearray of a size")
    return bytearray(*args)


_GUARDED = {"_reconstruct": _empty_array, "bytearray": _bytes_copy}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: ANN201
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return _GUARDED.get(name) or super().find_class(module, name)


def read_batch(path: Path) -> dict:
    """Load one pickle batch as a dict with str keys."""
    try:
        with open(path, "rb") as handle:
            batch = _ArrayUnpickler(handle, encoding="bytes").load()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except Exception as exc:  # any decoding failure means a corrupt file
        raise ConfigError(f"{path}: truncated or corrupt CIFAR pickle ({type(exc).__name__})") from None
    if not isinstance(batch, dict):
        raise ConfigError(f"{path}: expected a CIFAR batch dictionary")
    return {k.decode(errors="replace") if isinstance(k, bytes) else k: v for k, v in batch.items()}


def read_split(
    folder: Path, files: list[str], label_key: str, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate batches into (N, 3, 32, 32) uint8 images and int64 labels (below `num_classes`)."""
    images, labels = [], []
    for name in files:
        path = folder / name
        batch = read_batch(path)
        if "data" not in batch or label_key not in batch:
            raise ConfigError(f"{path}: missing 'data' or '{label_key}' in CIFAR batch")
        data = numeric_array(batch["data"], path, "data")
        if data.ndim != 2 or data.shape[1] != 3072:
            raise ConfigError(f"{path}: CIFAR batch has shape {data.shape}, expected (N, 3072)")
        batch_labels = int_labels(numeric_array(batch[label_key], path, label_key), path, label_key, num_classes)
        if len(batch_labels) != len(data):
            raise ConfigError(f"{path}: {len(data)} images but {len(batch_labels)} labels in '{label_key}'")
        images.append(uint8_pixels(data, path, "data").reshape(-1, 3, 32, 32))
        labels.append(batch_labels)
    return np.concatenate(images), np.concatenate(labels)


def read_names(folder: Path, meta_file: str, key: str, count: int | None = None) -> list[str]:
    """The class names in a meta file: distinct, and `count` of them (the number of classes the set has)."""
    path = folder / meta_file
    meta = read_batch(path)
    if key not in meta:
        raise ConfigError(f"{path}: missing '{key}' in CIFAR meta file (found: {', '.join(map(str, meta)) or 'none'})")
    names = class_names(meta[key], path, key)
    if count is not None and len(names) != count:
        raise ConfigError(f"{path}: '{key}' holds {len(names)} class names; this set has {count} classes")
    return names
