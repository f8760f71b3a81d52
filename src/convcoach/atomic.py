"""Files written whole or not at all: a temporary file beside the target, fsync, rename; a write that fails
(a full disk) is a one-line WriteError saying what it needed and what is free; a killed write's leftovers removed."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from .errors import ConfigError, WriteError

log = logging.getLogger("convcoach")

# `.NAME.XXXXXXXX.tmp`: ours (8 hex digits), and tempfile.mkstemp's names from before (8 of [a-z0-9_])
TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def temp_path(path: Path) -> Path:
    """A new empty file beside `path` with the permissions open() would give (0o666 less the umask)."""
    name = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    return name


@contextlib.contextmanager
def staged(path: str | Path, size: int | None = None) -> Iterator[Path]:
    """A temporary file beside `path` for the block to write, fsynced and renamed over `path` when the block
    succeeds, removed otherwise. An OSError on the way (`size`: the bytes it should need) is a WriteError."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; give a file path to write to")
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(path)
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except Exception as exc:
        cause = os_error(exc)
        if isinstance(exc, ConfigError) or cause is None:
            raise
        written = _discard(tmp)  # first: the space it held is free again
        raise write_error(path, cause, size, written) from None
    finally:
        _discard(tmp)


def _discard(tmp: Path | None) -> int:
    """Remove the temporary file if it is there; the bytes it held."""
    if tmp is None or not tmp.exists():
        return 0
    size = tmp.stat().st_size
    tmp.unlink()
    return size


def atomic_write_bytes(path: str | Path, write: Callable[[IO[bytes]], object], size: int | None = None) -> None:
    """Call write(file) on a temporary file beside `path`, fsync it, then rename it over `path` (`staged`)."""
    with staged(path, size) as tmp, open(tmp, "wb") as handle:
        write(handle)


def os_error(exc: BaseException) -> OSError | None:
    """The OSError behind `exc`: itself, or one it was raised from or while handling (torch's zip writer
    turns a failed write into a RuntimeError raised while handling it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def write_error(path: Path, error: OSError, size: int | None, written: int = 0) -> WriteError:
    """`path` could not be written: the system's reason, and on a full disk what it needs and what is free."""
    reason = error.strerror or str(error) or type(error).__name__
    if error.errno not in DISK_FULL:
        return WriteError(f"{path}: cannot write it: {reason}")
    needs = f"about {byte_size(size)}" if size and size >= written else f"more than {byte_size(written)}"
    try:
        free = f"{byte_size(shutil.disk_usage(path.parent).free)} free"
    except OSError:
        free = "free space unknown"
    needed = f"it needs {needs}, " if size or written else ""
    return WriteError(
        f"{path}: cannot write it: {reason} ({needed}{free} in {path.parent}); free some space or write it elsewhere"
    )


def byte_size(count: int) -> str:
    """A byte count for people: 512 bytes, 40.1 kB, 2.3 MB, 1.5 GB (powers of 1000, as df -H)."""
    value, units = float(count), ["bytes", "kB", "MB", "GB", "TB"]
    while value >= 1000 and len(units) > 1:
        value, units = value / 1000, units[1:]
    return f"{count} bytes" if units[0] == "bytes" else f"{value:.1f} {units[0]}"


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the temporary files that killed writes left in `folder` (only names `staged` gives)."""
    removed = []
    for path in sorted(Path(folder).glob(".*.tmp")):
        if TEMP_NAME.fullmatch(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.info("removed %d temporary file(s) that an interrupted write left in %s", len(removed), folder)
    return removed
