"""Decoded image folders on disk, so the second run on an unchanged folder starts in seconds, and a
folder too large for memory is decoded once into a memory-mapped array instead of per sample each epoch.

The key is a BLAKE2 hash of every file's absolute path, byte size, modification time and label, and
of the decoding (channels, size, pillow's version, DECODER): editing, adding or removing one file
makes a new key, and stale entries are never read. Entries live in <cache>/decoded/ (CONVCOACH_CACHE,
default ~/.cache/convcoach) as uncompressed .npz files written atomically; a damaged one is decoded
again, and a cache that cannot be written (read-only, full disk) only costs the next run its speed."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import PIL

from ..errors import ConfigError
from .fetch import cache_root
from .imagefolder import decode_all, decode_into, report_unreadable, use_processes

log = logging.getLogger("convcoach")

DECODER = 2  # raise when load_image's output changes (2: JPEG draft-mode decoding)


def cache_key(files: list[Path], labels: np.ndarray, channels: int, size: tuple[int, int]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"decoder {DECODER} pillow {PIL.__version__} channels {channels} size {size}\n".encode())
    for path, label in zip(files, labels):
        try:
            stat = os.stat(path)
        except OSError as exc:  # removed or made unreadable since the folder was listed
            raise ConfigError(f"{path}: cannot read the image ({exc.strerror or exc})") from None
        digest.update(f"{os.path.abspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\0{int(label)}\n".encode())
    return digest.hexdigest()


def cached_decode(
    files: list[Path], labels: np.ndarray, channels: int, size: tuple[int, int], strict: bool
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """decode_all's result, read from the cache when this exact folder state was decoded before."""
    folder, path, meta = _entry(files, labels, channels, size)
    stored = _read(path, meta, channels, size, strict, mapped=False)
    if stored is not None:
        return stored
    images, kept, skipped = decode_all(files, labels, channels, size, strict)

    def write() -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _write_labels(meta, kept, skipped)
            _write_atomic(path, lambda handle: np.save(handle, images))  # raw .npy: no zip CRC to compute
        except OSError as exc:
            log.warning("could not cache the decoded images in %s (%s); the next run decodes them again", folder, exc)

    # written while the run starts (a thread the interpreter waits for at exit; the entry appears whole
    # or not at all): the decoded array is never written to
    writer = threading.Thread(target=write, name="convcoach-decoded-cache")
    writer.start()
    _writers.append(writer)
    return images, kept, skipped


_writers: list[threading.Thread] = []


def finish_writes() -> None:
    """Wait until every cache entry being written in the background is on disk."""
    while _writers:
        _writers.pop().join()


def _entry(files: list[Path], labels: np.ndarray, channels: int, size: tuple[int, int]) -> tuple[Path, Path, Path]:
    """The cache folder, and the images' and labels' files of this folder state's entry."""
    folder = cache_root() / "decoded"
    key = cache_key(files, labels, channels, size)
    return folder, folder / f"{key}.npy", folder / f"{key}.labels.npz"


def _write_labels(meta: Path, kept: np.ndarray, skipped: list[str]) -> None:
    _write_atomic(meta, lambda handle: np.savez(handle, labels=kept, skipped=np.asarray(skipped, dtype=str)))


def _write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    descriptor, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _read(
    path: Path, meta: Path, channels: int, size: tuple[int, int], strict: bool, mapped: bool
) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """A cache entry (memory-mapped or read into memory), or None when absent or damaged."""
    if not (path.is_file() and meta.is_file()):
        return None
    try:
        with np.load(meta) as stored:
            kept, skipped = stored["labels"], [str(s) for s in stored["skipped"]]
        images = np.load(path, mmap_mode="c" if mapped else None)
        if images.shape != (len(kept), channels, *size) or images.dtype != np.uint8:
            raise ValueError(f"holds {images.shape} {images.dtype}, not {(len(kept), channels, *size)} uint8")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("decoded-image cache entry %s is damaged (%s); decoding the folder again", path, exc)
        return None
    if strict and skipped:
        raise ConfigError(f"{skipped[0]}: unreadable image (found when this folder was first decoded)")
    log.info("decoded images %s from the cache %s", "memory-mapped" if mapped else "read", path)
    return images, kept, skipped


def mapped_decode(
    files: list[Path], labels: np.ndarray, channels: int, size: tuple[int, int], strict: bool
) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """A split too large for memory as a memory-mapped uint8 array (N, C, H, W) in the cache, decoded
    once in parallel and read back by the page cache: batches are then gathered as from memory. None
    when the cache's disk lacks the room (the caller streams the files through workers instead)."""
    folder, path, meta = _entry(files, labels, channels, size)
    stored = _read(path, meta, channels, size, strict, mapped=True)
    if stored is not None:
        return stored
    need = len(files) * channels * size[0] * size[1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if shutil.disk_usage(folder).free < need * 1.1 + 2**30:
            log.info("no room for %.1f GB of decoded images in %s: streaming the files", need / 2**30, folder)
            return None
    except OSError:
        return None
    descriptor, temp = tempfile.mkstemp(dir=folder, suffix=".npy.tmp")
    os.close(descriptor)
    try:
        images = np.lib.format.open_memmap(temp, mode="w+", dtype=np.uint8, shape=(len(files), channels, *size))
        ok, errors = decode_into(images, files, channels, size, use_processes(len(files)))
        skipped = report_unreadable(files, ok, errors, strict)
        images.flush()
        del images
        if skipped:  # the readable rows alone, in a file whose header holds their count
            full, short = np.load(temp, mmap_mode="r"), temp + ".short.npy"
            np.save(short, full[ok])
            del full
            os.replace(short, temp)
        kept = np.asarray(labels)[ok].astype(np.int64)
        _write_labels(meta, kept, skipped)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        Path(temp + ".short.npy").unlink(missing_ok=True)
        raise
    return np.load(path, mmap_mode="c"), kept, skipped
