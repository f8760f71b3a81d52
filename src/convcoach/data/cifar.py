"""Reader for the CIFAR-10/100 python-pickle batches, with an unpickler that builds only arrays."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..errors import ConfigError

# A pickle can run arbitrary code; these are the only globals CIFAR batches need.
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


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: ANN201
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


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
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def read_split(folder: Path, files: list[str], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate batches into (N, 3, 32, 32) uint8 images and int64 labels."""
    images, labels = [], []
    for name in files:
        batch = read_batch(folder / name)
        if "data" not in batch or label_key not in batch:
            raise ConfigError(f"{folder / name}: missing 'data' or '{label_key}' in CIFAR batch")
        data = np.asarray(batch["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072 or len(batch[label_key]) != len(data):
            raise ConfigError(f"{folder / name}: CIFAR batch has shape {data.shape}, expected (N, 3072)")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def read_names(folder: Path, meta_file: str, key: str) -> list[str]:
    meta = read_batch(folder / meta_file)
    return [n.decode() if isinstance(n, bytes) else str(n) for n in meta[key]]
