"""Where commands write: output paths checked before the work, fresh run directories whose names never collide,
and one owner per run directory (`.lock`, held with flock while the run writes)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from .errors import ConfigError

LOCK_NAME = ".lock"
PROGRESS_FILES = ("summary.json", "last.pt", "best.pt")  # what a run has reached: gone before an --overwrite
STARTED_FILES = ("config.yaml", "last.pt")  # written by a run once it starts


def _not_writable(folder: Path) -> str | None:
    """Why no file can be created in the existing directory `folder`, or None."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return "not writable (permission denied)"
    try:  # root passes os.access everywhere: a real (nameless where the OS allows) file says the truth
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return f"not writable ({(exc.strerror or str(exc)).lower()})"
    return None


def _problem(path: Path, directory: bool) -> str | None:
    """What stops `path` from being written as a directory (`directory`) or a file, or None."""
    if os.path.isdir(path):
        return _not_writable(path) if directory else "is a directory, not a file name"
    if os.path.lexists(path):
        return "is a file, not a directory" if directory else _not_writable(path.parent)
    for ancestor in path.parents:  # the nearest one that exists decides
        if os.path.isdir(ancestor):
            return _not_writable(ancestor)
        if os.path.lexists(ancestor):
            return f"lies under the file {ancestor}"
    return None


def prepare_out_dir(path: str | Path, option: str = "--out") -> Path:
    """`path` as a directory a command may write into (it need not exist yet), checked before the work starts:
    a ConfigError naming `option` and the path when it is a file, lies under a file, or is not writable."""
    return _checked(Path(path), option, directory=True)


def prepare_out_file(path: str | Path, option: str = "--out") -> Path:
    """`path` as a file a command may write (an existing file is replaced), checked before the work starts:
    a ConfigError naming `option` and the path when it is a directory, lies under a file, or is not writable."""
    return _checked(Path(path), option, directory=False)


def _checked(path: Path, option: str, directory: bool) -> Path:
    if problem := _problem(path, directory=directory):
        raise ConfigError(f"{option} {path}: {problem}")
    return path


def _default_name(prefix: str, option: str) -> Path:
    """runs/<prefix><timestamp>, checked: where a command writes when `option` is not given."""
    return prepare_out_dir(Path("runs") / (prefix + datetime.now().strftime("%Y%m%d-%H%M%S")), option)


def _reserve(stem: Path) -> Path:
    """`stem` created, or <stem>-2, -3, ... when another command took it first (mkdir is atomic): two commands
    started in the same second never share a directory, and the names still sort by time."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    for number in range(1, 10_000):
        path = stem if number == 1 else stem.with_name(f"{stem.name}-{number}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"{stem}: 10000 directories of this name and second already; give --out")


def default_run_dir(prefix: str = "", option: str = "--out") -> Path:
    """A fresh runs/<prefix><timestamp>, created (`_reserve`)."""
    return _reserve(_default_name(prefix, option))


def output_dir(out: str | None, prefix: str = "", option: str = "--out") -> Path:
    """The directory a command writes its summary.json into, checked before the work and not created yet:
    `out` (a training run's directory is refused: its summary would be lost), or runs/<prefix><timestamp>."""
    if not out:
        return _default_name(prefix, option)
    path = prepare_out_dir(out, option)
    if started := [name for name in STARTED_FILES if (path / name).is_file()]:
        raise ConfigError(
            f"{option} {path} holds a training run ({' and '.join(started)}): this command's summary.json would "
            f"replace the run's; give another {option}"
        )
    return path


def make_output_dir(path: Path, out: str | None) -> Path:
    """`output_dir`'s answer created once the work is done (a failed command leaves no empty directory):
    the given `out` as it is, a default name made unique (`_reserve`)."""
    if out:
        path.mkdir(parents=True, exist_ok=True)
        return path
    return _reserve(path)


class RunDirLock:
    """This process's ownership of a run directory: RUN/.lock held with flock(LOCK_EX), which the OS drops
    when the process dies (a killed run never blocks the next one). Claims in one process share it."""

    held: dict[str, RunDirLock] = {}  # by real path

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path, self.descriptor, self.claims = path, descriptor, 1
        self.created = False  # by the claim (claim_run_dir): `abandon` removes it when nothing was written

    def release(self) -> None:
        """Give up one claim; the last one removes .lock (while still holding it) and drops the lock."""
        self.claims -= 1
        if self.claims > 0 or self.descriptor < 0:
            return
        RunDirLock.held.pop(os.path.realpath(self.path), None)
        try:
            (self.path / LOCK_NAME).unlink(missing_ok=True)
        except OSError:
            pass  # a directory gone read-only: closing still releases the lock
        os.close(self.descriptor)
        self.descriptor = -1

    def abandon(self) -> None:
        """Release, for a run that failed to start: a directory its claim created goes too while it is empty."""
        self.release()
        if self.created and self.claims <= 0 and self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()


def _open_locked(path: Path, option: str) -> int:
    """A descriptor of path/.lock holding the flock, or a ConfigError naming the holder."""
    lock_file = path / LOCK_NAME
    while True:
        try:
            descriptor = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"{option} {path}: not writable ({(exc.strerror or str(exc)).lower()})") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 512, 0).decode(errors="replace").strip() or "its pid not written yet"
            os.close(descriptor)
            advice = "wait for it to end" if option == "--resume" else f"use another {option}, or wait"
            raise ConfigError(f"{path} is in use by another convcoach run ({holder}); {advice}") from None
        try:  # the holder may have released and removed the file between our open and flock: take the new one
            if os.stat(lock_file).st_ino == os.fstat(descriptor).st_ino:
                return descriptor
        except FileNotFoundError:
            pass
        os.close(descriptor)


def lock_run_dir(path: str | Path, option: str = "--out") -> RunDirLock:
    """Own the existing run directory `path` until `release()` (or this process ends): a second process
    gets a ConfigError naming the owner's pid, host and start time."""
    path = Path(path)
    known = RunDirLock.held.get(os.path.realpath(path))
    if known is not None:
        known.claims += 1
        return known
    descriptor = _open_locked(path, option)
    os.ftruncate(descriptor, 0)
    owner = f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now():%Y-%m-%d %H:%M:%S}\n"
    os.pwrite(descriptor, owner.encode(), 0)
    lock = RunDirLock.held[os.path.realpath(path)] = RunDirLock(path, descriptor)
    return lock


def _refuse_earlier_run(path: Path, option: str) -> None:
    """A ConfigError when `path` holds a run (finished or not): a new one would silently replace it."""
    started = [name for name in STARTED_FILES if (path / name).is_file()]
    if started and (path / "summary.json").is_file():
        raise ConfigError(
            f"{option} {path} holds a finished run (summary.json): give another {option}, --overwrite to replace "
            f"it, or --resume {path} --epochs N to train it further"
        )
    if started:
        raise ConfigError(
            f"{option} {path} holds an unfinished run ({' and '.join(started)}, no summary.json): --resume {path} "
            f"to continue it, another {option}, or --overwrite to start it over"
        )


def claim_run_dir(out: str | None, overwrite: bool = False, option: str = "--out") -> RunDirLock:
    """A new run's directory, created and owned (`lock_run_dir`): `out`, or a fresh runs/<timestamp>. One
    that holds an earlier run is refused unless `overwrite`, which removes that run's summary and checkpoints."""
    created = not out or not os.path.lexists(out)
    path = prepare_out_dir(out, option) if out else default_run_dir("", option)
    path.mkdir(parents=True, exist_ok=True)
    lock = lock_run_dir(path, option)
    lock.created = lock.created or created
    try:
        if overwrite:
            for name in PROGRESS_FILES:
                (path / name).unlink(missing_ok=True)
        else:
            _refuse_earlier_run(path, option)
    except ConfigError:
        lock.abandon()
        raise
    return lock


@contextlib.contextmanager
def owned_run_dir(out: str | None, overwrite: bool = False, option: str = "--out") -> Iterator[RunDirLock]:
    """`claim_run_dir` for the block's work, released after it (abandoned after a ConfigError)."""
    lock = claim_run_dir(out, overwrite, option)
    try:
        yield lock
    except ConfigError:
        lock.abandon()
        raise
    except BaseException:
        lock.release()
        raise
    lock.release()
