"""Readers for the IDX format of MNIST and Fashion-MNIST (gzip or raw)."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from ..errors import ConfigError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Decode one IDX file into a native-byte-order array; a truncated or corrupt file raises a ConfigError
    naming it. A gzip file is decompressed only as far as its header promises (no gzip bomb)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            if handle.read(2) == b"\x1f\x8b":
                handle.seek(0)
                raw = _read_gzip(path, gzip.GzipFile(fileobj=handle))
            else:
                raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read IDX file ({exc})") from None
    dims, dtype, header = _header(raw, path)
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise ConfigError(
            f"{path}: truncated or corrupt IDX file: header promises {expected} data bytes, found {len(raw) - header}"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def _header(raw: bytes, path: Path) -> tuple[list[int], np.dtype, int]:
    """The dimensions, element type and header length of an IDX file's bytes."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise ConfigError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ConfigError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return dims, np.dtype(_DTYPES[raw[2]]), header


def _read_gzip(path: Path, stream: gzip.GzipFile) -> bytes:
    """The decompressed header and data, reading at most one byte more than the header promises."""
    try:
        raw = stream.read(4)
        raw += stream.read(4 * raw[3]) if len(raw) == 4 else b""
        if len(raw) >= 4 and raw[2] in _DTYPES and len(raw) == 4 + 4 * raw[3]:
            dims, dtype, _ = _header(raw, path)
            chunks, wanted = [raw], math.prod(dims) * dtype.itemsize + 1
            while wanted > 0 and (chunk := stream.read(min(wanted, 1 << 24))):  # in chunks: memory as the data
                chunks.append(chunk)
                wanted -= len(chunk)
            raw = b"".join(chunks)
        return raw
    except (OSError, EOFError, zlib.error) as exc:  # e.g. an interrupted download
        raise ConfigError(f"{path}: truncated or corrupt gzip IDX file ({exc})") from None


def find_idx(folder: Path, stem: str) -> Path | None:
    """The IDX file named `stem` in `folder`, gzipped or raw."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None
