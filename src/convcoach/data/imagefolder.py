"""Decode a folder of class subfolders into uint8 arrays with pillow: on every core (forked processes
or threads), JPEGs in draft mode when the target is at most half their size, and once per folder
state (decoded_cache.py)."""

from __future__ import annotations

import logging
import mmap
import multiprocessing as mp
import struct
import sys
import zlib
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError
from ..threads import cores

log = logging.getLogger("convcoach")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F", "La"}
# everything pillow raises on a corrupt, truncated, hostile or vanished file, caught here and nowhere else:
# OSError (UnidentifiedImageError, truncated data, no permission), ValueError (a truncated tRNS chunk),
# DecompressionBombError (a header declaring 30000x30000 pixels), and what its format parsers let escape
UNREADABLE = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    IndexError,
    KeyError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)


def list_classes(root: Path) -> list[str]:
    """Sorted class subfolder names; an empty or unreadable class folder is an error naming it."""
    if not root.is_dir():
        raise ConfigError(f"image folder not found: {root}")
    classes = sorted(p.name for p in _entries(root) if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ConfigError(f"{root}: no class subfolders (expected one folder per class)")
    for name in classes:
        if not any(_is_image_path(f) for f in _entries(root / name)):
            raise ConfigError(f"{root / name}: class folder has no images")
    folded: dict[str, str] = {}
    for name in classes:
        if name.casefold() in folded:  # distinct here, one folder once copied to macOS or Windows
            log.warning("%s: class folders '%s' and '%s' differ only in case", root, folded[name.casefold()], name)
        folded[name.casefold()] = name
    return classes


def _entries(folder: Path) -> list[Path]:
    """A folder's entries; an unreadable folder (no permission) is an error naming it."""
    try:
        return list(folder.iterdir())
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None


def list_files(root: Path, classes: list[str]) -> tuple[list[Path], np.ndarray]:
    files, labels = [], []
    for index, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            raise ConfigError(f"{root}: missing class folder '{name}' (other splits have it)")
        for path in sorted(_entries(folder)):
            if _is_image_path(path):
                files.append(path)
                labels.append(index)
    return files, np.asarray(labels, dtype=np.int64)


def _is_image_path(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def decide_channels(files: list[Path]) -> int:
    """1 when every readable image is grayscale, else 3; decided once for the whole set."""
    for path in files:
        try:
            with Image.open(path) as image:
                if image.mode not in GRAY_MODES and not (image.mode == "P" and _gray_palette(image)):
                    return 3
        except UNREADABLE:
            continue
    return 1


def _gray_palette(image: Image.Image) -> bool:
    palette = image.getpalette() or []
    triples = [palette[i : i + 3] for i in range(0, len(palette), 3)]
    return all(r == g == b for r, g, b in triples)


def load_image(
    path: Path, channels: int, size: tuple[int, int], background: tuple[int, int, int] = (255, 255, 255)
) -> np.ndarray:
    """One image as a (C, H, W) uint8 array; transparency is composited onto `background`."""
    with Image.open(path) as image:
        if image.format == "JPEG" and image.size[0] >= 2 * size[1] and image.size[1] >= 2 * size[0]:
            # decode at 1/2, 1/4 or 1/8 scale (the DCT's own reduction), still at least the target size:
            # measured 3-5x faster on 300-800 px photos resized to 64 px (benchmarks/image_folders.py)
            image.draft(None, (size[1], size[0]))
        image.load()
        if image.mode.startswith("I;16"):
            # 16-bit grayscale: scale 0..65535 to 0..255 (convert("L") would clip everything above 255)
            image = Image.fromarray(np.round(np.asarray(image, dtype=np.float64) / 257.0).astype(np.uint8))
        if image.mode == "P" and "transparency" in image.info:
            image = image.convert("RGBA")
        if image.mode in ("RGBA", "LA", "La", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, background + (255,))
            image = Image.alpha_composite(canvas, rgba)
        image = image.convert("L" if channels == 1 else "RGB")
        if image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.BILINEAR)
        array = np.array(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def read_image(path: Path, channels: int, size: tuple[int, int]) -> np.ndarray:
    """load_image, with any decoding failure a ConfigError naming the file."""
    try:
        return load_image(path, channels, size)
    except UNREADABLE as exc:
        raise ConfigError(f"{path}: unreadable image ({exc})") from None


def first_size(files: list[Path]) -> tuple[int, int]:
    for path in files:
        try:
            with Image.open(path) as image:
                return image.size[1], image.size[0]
        except UNREADABLE:
            continue
    raise ConfigError(f"no readable image among {len(files)} files")


PROCESS_MINIMUM = 1024  # files from which decoding forks worker processes (below: threads, no start-up)
CHUNK = 256  # files per worker task
_target: tuple | None = None  # (images, files, channels, size) while decoding: forked workers inherit it


def _decode_rows(start: int, stop: int) -> tuple[int, np.ndarray, dict[int, str]]:
    """Decode files[start:stop] straight into images[start:stop] (shared memory in a forked worker)."""
    images, files, channels, size = _target
    ok = np.zeros(stop - start, dtype=bool)
    errors: dict[int, str] = {}
    for index in range(start, stop):
        try:
            images[index] = load_image(files[index], channels, size)
            ok[index - start] = True
        except UNREADABLE as exc:
            errors[index] = str(exc)
    return start, ok, errors


def use_processes(count: int) -> bool:
    """Forked processes for a large set: pillow holds the GIL between its decoding calls (2 threads
    decoded 2,383 photos/s where 2 processes did 3,241); threads where forking is unsafe (CUDA in
    use), impossible, or not worth its start-up."""
    if count < PROCESS_MINIMUM or len(cores()) < 2 or "fork" not in mp.get_all_start_methods():
        return False
    return not ("torch" in sys.modules and sys.modules["torch"].cuda.is_initialized())


def shared_array(shape: tuple[int, ...]) -> np.ndarray:
    """A uint8 array in anonymous shared memory: rows written by forked workers reach the parent."""
    count = int(np.prod(shape))
    return np.frombuffer(mmap.mmap(-1, max(1, count)), dtype=np.uint8)[:count].reshape(shape)


def decode_into(
    images: np.ndarray, files: list[Path], channels: int, size: tuple[int, int], processes: bool
) -> tuple[np.ndarray, dict[int, str]]:
    """Decode files[i] into images[i] on every core; which rows succeeded, and why the others failed.
    With `processes` (use_processes), `images` must be shared with them (shared_array, or a file-backed
    np.memmap)."""
    global _target
    ok = np.zeros(len(files), dtype=bool)
    errors: dict[int, str] = {}
    starts = list(range(0, len(files), CHUNK))
    stops = [min(start + CHUNK, len(files)) for start in starts]
    workers = len(cores())
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) if processes else ThreadPoolExecutor(workers)
    _target = (images, files, channels, size)
    try:
        with pool:
            for start, part_ok, part_errors in pool.map(_decode_rows, starts, stops):
                ok[start : start + len(part_ok)] = part_ok
                errors.update(part_errors)
    finally:
        _target = None
    return ok, errors


def decode_all(
    files: list[Path], labels: np.ndarray, channels: int, size: tuple[int, int], strict: bool
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode every file into one (N, C, H, W) array, in parallel; unreadable files are skipped and
    reported (or fail when strict)."""
    shape, processes = (len(files), channels, *size), use_processes(len(files))
    images = shared_array(shape) if processes else np.empty(shape, dtype=np.uint8)
    ok, errors = decode_into(images, files, channels, size, processes)
    skipped = report_unreadable(files, ok, errors, strict)
    return (images if ok.all() else images[ok]), np.asarray(labels)[ok].astype(np.int64), skipped


def report_unreadable(files: list[Path], ok: np.ndarray, errors: dict[int, str], strict: bool) -> list[str]:
    """The files that failed to decode, each logged; with `strict` the first is an error, as is none readable."""
    for index in sorted(errors):
        if strict:
            raise ConfigError(f"{files[index]}: unreadable image ({errors[index]})")
        log.warning("skipping unreadable image %s (%s)", files[index], errors[index])
    if not ok.any():
        raise ConfigError("no readable images")
    return [str(files[index]) for index in sorted(errors)]
