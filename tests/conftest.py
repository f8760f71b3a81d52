"""Shared fixtures: a tiny synthetic image set that a small net learns in seconds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest_plugins = ["postgres"]  # tests/postgres.py: a throw-away server, `storage_url` on SQLite and PostgreSQL


def make_blobs(n_per_class: int = 60, classes: int = 3, size: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class k is a bright square in quadrant k of a noisy image: easy, but only for a working pipeline."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, size=(n_per_class * classes, size, size), dtype=np.uint8)
    labels = np.repeat(np.arange(classes), n_per_class)
    half = size // 2
    for index, label in enumerate(labels):
        row, col = divmod(int(label), 2)
        images[index, row * half : (row + 1) * half, col * half : (col + 1) * half] += 150
    order = rng.permutation(len(labels))
    return images[order], labels[order].astype(np.int64)


def pytest_configure(config):
    """Decoded-image and feature caches go to a temporary folder, never the user's ~/.cache; runs use a
    fixed thread count (threads.py would lower it on a busy machine, and another count splits reductions
    differently: runs compared for bit-identity must agree on it)."""
    import os
    import tempfile

    os.environ.setdefault("CONVCOACH_CACHE", tempfile.mkdtemp(prefix="convcoach-test-cache-"))
    os.environ.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` run where a GPU is (benchmarks/gpu_check.sh) and are skipped elsewhere."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (benchmarks/gpu_check.sh runs these)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture
def single_thread():
    """One intra-op thread: as fast for tiny models, and far faster when other jobs share the cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def blobs_npz(tmp_path: Path) -> Path:
    x, y = make_blobs()
    path = tmp_path / "blobs.npz"
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture(scope="module")
def blobs(tmp_path_factory) -> Path:
    """`blobs_npz` written once for a module whose fixtures train on it."""
    x, y = make_blobs()
    path = tmp_path_factory.mktemp("data") / "blobs.npz"
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture
def frozen_clock(monkeypatch):
    """run_dirs' clock stopped at 2026-01-02 03:04:05: default run names made in one second."""
    from datetime import datetime

    from convcoach import run_dirs

    class Frozen:
        @staticmethod
        def now():
            return datetime(2026, 1, 2, 3, 4, 5)

    monkeypatch.setattr(run_dirs, "datetime", Frozen)


def small_config(data: Path, out: Path, **overrides):
    from convcoach import TrainConfig

    values = dict(
        data=f"npz:{data}",
        out=str(out),
        model="cnn",
        depth=2,
        width=8,
        epochs=3,
        batch_size=32,
        quiet=True,
        augment=["none"],
        schedule="constant",
        lr=0.05,
        label_smoothing=0.0,
        val_fraction=0.1,
        # one lr for every parameter, as the worked numbers assume; Muon: tests/train/test_muon.py
        optimizer="nesterov",
        precision="fp32",  # auto times a few steps on a bf16 CPU: two runs a test compares must not choose differently
    )
    values.update(overrides)
    return TrainConfig(**values)


def interrupt_after_epoch(epoch: int):
    """A callback that raises KeyboardInterrupt once `epoch` is checkpointed: an in-process kill."""
    from convcoach.train.callbacks import Callback

    class InterruptAfterEpoch(Callback):
        order = 99  # after the checkpointer

        def on_epoch_end(self, trainer, metrics):
            if metrics["epoch"] == epoch:
                raise KeyboardInterrupt

    return InterruptAfterEpoch()


def interrupt_at_step(step: int):
    """A callback that raises KeyboardInterrupt at the end of optimizer step `step`: an in-process kill."""
    from convcoach.train.callbacks import Callback

    class InterruptAtStep(Callback):
        order = 99  # after the checkpointer

        def on_batch_end(self, trainer, loss):
            if trainer.state.step == step:
                raise KeyboardInterrupt

    return InterruptAtStep()


@pytest.fixture
def offline(monkeypatch):
    """A named set missing from its folder is an error here, never a download."""
    from convcoach.errors import ConfigError

    def refuse(name, target, mirror=None):
        raise ConfigError(f"test: no download of {name}")

    monkeypatch.setattr("convcoach.data.fetch.fetch", refuse)
    monkeypatch.delenv("CONVCOACH_DATA", raising=False)


def descendants(pid: int) -> list[int]:
    """Every process started under `pid`, children first (read from /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue  # the task ended while we looked
        for child in children:
            found += [int(child), *descendants(int(child))]
    return found


def kill_tree(proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """SIGKILL a launcher and everything it started (torchrun puts each worker in a session of its own, so
    its process group is not enough), then wait until all have exited: a dying worker still holds locks."""
    import os
    import signal
    import time

    pids = [proc.pid, *descendants(proc.pid)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    deadline = time.time() + timeout
    for pid in pids[1:]:
        while time.time() < deadline:
            try:
                if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z"):
                    break  # exited, not yet reaped by its new parent
            except OSError:
                break
            time.sleep(0.02)
        else:
            raise AssertionError(f"pid {pid} still alive {timeout:.0f} s after SIGKILL")


def wait_for_epochs(run_dir: Path, count: int, timeout: float = 120.0) -> None:
    """Poll a running train until `count` epochs are logged in metrics.jsonl and saved in last.pt
    (the metrics row is written just before the checkpoint: a kill between them left no last.pt)."""
    import time

    from convcoach.train.checkpoint import load_checkpoint

    deadline = time.time() + timeout
    while time.time() < deadline:
        metrics, last = run_dir / "metrics.jsonl", run_dir / "last.pt"
        if metrics.exists() and metrics.read_text().count('"kind": "epoch"') >= count and last.exists():
            if load_checkpoint(last)["state"]["epoch"] >= count:  # written atomically: never half a file
                return
        time.sleep(0.01)
