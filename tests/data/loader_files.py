"""Valid files of every format convcoach reads, the ways the loader tests damage them, and the check that a
load returned what the loaders document (uint8 images, int64 labels in range, distinct class names)."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import random
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

IDX_STEMS = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C}
IDX_CODES |= {np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}
CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
CIFAR_NAMES = [b"plane", b"car", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
CONFIG_YAML = "model: cnn\ndepth: 2\nwidth: 8\nepochs: 3\nlr: 0.05\naugment: [hflip, 'translate:2']\nseed: 7\n"


def idx_bytes(array: np.ndarray, code: int | None = None, dims: tuple[int, ...] | None = None) -> bytes:
    """An IDX file of `array` (its dtype's type code, or `code`), with its shape or the `dims` given."""
    dims = array.shape if dims is None else dims
    code = (
        IDX_CODES[array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype] if code is None else code
    )
    header = bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def idx_arrays(seed: int = 0) -> list[np.ndarray]:
    """A tiny MNIST-format set: 20 training and 10 test 6x6 images, labels 0..9 twice and once."""
    rng = np.random.default_rng(seed)
    train, test = (rng.integers(0, 256, (n, 6, 6), dtype=np.uint8) for n in (20, 10))
    return [train, np.tile(np.arange(10, dtype=np.uint8), 2), test, np.arange(10, dtype=np.uint8)]


def write_idx_set(folder: Path, contents: list[bytes], gzipped: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, data in zip(IDX_STEMS, contents):
        (folder / (stem + ".gz" if gzipped else stem)).write_bytes(data)
    return folder


def cifar_batch(rows: int = 2, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"fake", b"labels": [int(v) for v in rng.integers(0, 10, rows)],
            b"data": rng.integers(0, 256, (rows, 3072), dtype=np.uint8)}  # fmt: skip


def write_cifar_set(folder: Path, batches: dict[str, object] | None = None, protocol: int = 2) -> Path:
    """A CIFAR-10 folder: six batches and batches.meta; `batches` replaces files by name (bytes as they are)."""
    folder.mkdir(parents=True, exist_ok=True)
    contents: dict[str, object] = {name: cifar_batch(seed=i) for i, name in enumerate(CIFAR_FILES)}
    contents["batches.meta"] = {b"label_names": CIFAR_NAMES, b"num_vis": 3072}
    for name, value in {**contents, **(batches or {})}.items():
        data = value if isinstance(value, bytes) else pickle.dumps(value, protocol=protocol)
        (folder / name).write_bytes(data)
    return folder


def image_bytes(fmt: str = "PNG", mode: str = "RGB", seed: int = 0, size: tuple[int, int] = (8, 8)) -> bytes:
    array = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).convert(mode).save(buffer, fmt)
    return buffer.getvalue()


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, position = [], 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        chunks.append((data[position + 4 : position + 8], data[position + 8 : position + 8 + length]))
        position += 12 + length
    return chunks


def _png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d)) for k, d in chunks)
    return b"\x89PNG\r\n\x1a\n" + body


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A valid 8x8 PNG whose header declares `width` x `height` pixels (pillow: DecompressionBombError)."""
    chunks = _png_chunks(image_bytes())
    chunks[0] = (b"IHDR", struct.pack(">II", width, height) + chunks[0][1][8:])
    return _png(chunks)


def truncated_trns_png() -> bytes:
    """An RGB PNG with a 1-byte tRNS chunk (6 needed): pillow raises ValueError, not OSError."""
    chunks = _png_chunks(image_bytes())
    chunks.insert(1, (b"tRNS", b"\x00"))
    return _png(chunks)


def write_run_dir(folder: Path, epochs: int = 3) -> Path:
    """A finished run's text files: config.yaml, metrics.jsonl, summary.json, env.json, check.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(CONFIG_YAML)
    rows = [{"kind": "iter", "step": s, "epoch": s // 4, "loss": 2.0 / (s + 1), "lr": 0.05} for s in range(4 * epochs)]
    rows += [{"kind": "epoch", "epoch": e, "train_loss": 1.0 / (e + 1), "val_acc": 0.5 + e / 10} for e in range(epochs)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "summary.json").write_text(json.dumps({"command": "train", "test_accuracy": 0.8, "epochs_run": epochs}))
    (folder / "env.json").write_text(json.dumps({"torch": torch.__version__, "data_source": str(folder)}))
    (folder / "check.json").write_text(json.dumps({"results": [{"check": "loss", "status": "pass"}]}))
    return folder


def mutate_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """`data` with one random byte-level damage, and its name: flipped bytes, a cut, inserted, repeated
    or zeroed bytes."""
    data = bytearray(data)
    where = rng.randrange(max(1, len(data)))
    kind = rng.choice(["flip", "truncate", "insert", "repeat", "zero"])
    if kind == "flip":
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        data = data[:where]
    elif kind == "insert":
        data[where:where] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind == "repeat":
        data[where:where] = data[where : where + rng.randint(1, 64)]
    else:
        data[where : where + rng.randint(1, 32)] = bytes(min(32, len(data) - where))
    return bytes(data), f"{kind}@{where}"


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def check_bundle(bundle) -> None:
    """What load_data documents: >= 2 distinct str class names; per split uint8 (N, C, H, W) images with C in
    1, 3 and H, W >= 1, the bundle's shape, and int64 labels in 0..classes-1, one per image."""
    classes = bundle.classes
    assert len(classes) == bundle.num_classes >= 2 and len(set(classes)) == len(classes), f"classes {classes}"
    assert all(isinstance(name, str) for name in classes), f"classes {classes}"
    for split in [bundle.train, bundle.test] + ([bundle.val] if bundle.val is not None else []):
        images, labels = split.images, split.labels
        found = f"images {images.dtype} {tuple(images.shape)} in a {bundle.shape} bundle"
        assert images.dtype == torch.uint8 and images.ndim == 4 and tuple(images.shape[1:]) == bundle.shape, found
        assert images.shape[1] in (1, 3) and min(images.shape[2:]) >= 1, found
        assert labels.dtype == torch.int64 and labels.shape == (len(images),), f"labels {labels.dtype} {labels.shape}"
        in_range = len(labels) == 0 or (0 <= int(labels.min()) and int(labels.max()) < len(classes))
        assert in_range, f"labels {labels.min()}..{labels.max()} for {len(classes)} classes"
