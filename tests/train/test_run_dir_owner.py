"""One run per directory: a second writer is refused while the first lives (.lock, flock), a SIGKILLed owner blocks
nobody, default names never collide, and an earlier run is never overwritten without --overwrite."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import interrupt_after_epoch, small_config, wait_for_epochs

from convcoach import Trainer, run_dirs
from convcoach.cli import main
from convcoach.errors import ConfigError
from convcoach.train.checkpoint import load_checkpoint

OWNER = r"\(pid {pid} on {host} since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\)"


def train_argv(data: Path, out: Path | None, *extra: str) -> list[str]:
    where = ["--out", str(out)] if out else []
    return [
        *("train", "--data", f"npz:{data}", "--model", "cnn", "--depth", "2", "--width", "8", "--batch-size", "32"),
        *("--augment", "none", "--optimizer", "nesterov", "--lr", "0.05", "--precision", "fp32", "--threads", "1"),
        *("--quiet", "--no-report", *where, *extra),
    ]


def in_use(run: Path, pid: int, advice: str = "use another --out, or wait") -> str:
    """The one-line error (a regex) of a second writer to `run` while process `pid` owns it."""
    owner = OWNER.format(pid=pid, host=re.escape(socket.gethostname()))
    return rf"{re.escape(str(run))} is in use by another convcoach run {owner}; {advice}"


def cli_error(message: str) -> str:
    return rf"convcoach: error: {message}\n"


def test_two_concurrent_trains_into_one_directory(blobs_npz, tmp_path, capsys):
    """The second (this test's process) exits 2 naming the first's pid while it runs; after a SIGKILL of the first
    nothing blocks the resume."""
    run = tmp_path / "same"
    first = subprocess.Popen(
        [sys.executable, "-m", "convcoach", *train_argv(blobs_npz, run, "--epochs", "5000")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_epochs(run, 1)
        assert main(train_argv(blobs_npz, run, "--epochs", "2", "--lr", "0.01")) == 2
        assert re.fullmatch(cli_error(in_use(run, first.pid)), capsys.readouterr().err)
        assert main(["train", "--resume", str(run), "--quiet"]) == 2
        assert re.fullmatch(cli_error(in_use(run, first.pid, "wait for it to end")), capsys.readouterr().err)
        assert first.poll() is None  # refused while the first still ran
    finally:
        first.kill()  # SIGKILL: no clean-up runs, .lock stays behind with the dead pid in it
        first.wait()
    assert f"pid {first.pid} on" in (run / ".lock").read_text()
    assert main(train_argv(blobs_npz, run, "--epochs", "2")) == 2
    assert capsys.readouterr().err == (
        f"convcoach: error: --out {run} holds an unfinished run (config.yaml and last.pt, no summary.json): "
        f"--resume {run} to continue it, another --out, or --overwrite to start it over\n"
    )
    done = load_checkpoint(run / "last.pt")["state"]["epoch"]
    assert main(["train", "--resume", str(run), "--epochs", str(done + 1), "--quiet"]) == 0
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == done + 1
    assert not (run / ".lock").exists()  # released at the end of the run


@contextlib.contextmanager
def held_elsewhere(path: Path) -> Iterator[subprocess.Popen]:
    """Another process that owns `path` (lock_run_dir) until the block ends."""
    path.mkdir(parents=True, exist_ok=True)
    code = (
        "import sys, time; from convcoach.run_dirs import lock_run_dir; "
        "lock_run_dir(sys.argv[1]); print('held', flush=True); time.sleep(120)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def test_train_finetune_and_tune_refuse_a_directory_another_process_owns(blobs_npz, tmp_path, capsys):
    run = tmp_path / "owned"
    with held_elsewhere(run) as holder:
        commands = {
            "train": train_argv(blobs_npz, run, "--epochs", "1"),
            "finetune": ["finetune", "--from", str(tmp_path / "missing.pt"), "--data", f"npz:{blobs_npz}"],
            "tune": ["tune", "--data", f"npz:{blobs_npz}", "--space", "lr=0.01..0.1:log", "--trials", "1"],
        }
        for name, argv in commands.items():
            assert main([*argv, "--out", str(run)] if name != "train" else argv) == 2, name
            assert re.fullmatch(cli_error(in_use(run, holder.pid)), capsys.readouterr().err), name
        with pytest.raises(ConfigError, match=f"^{in_use(run, holder.pid)}$"):
            Trainer(small_config(blobs_npz, run))
    assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing was written; the dead holder's file stays
    Trainer(small_config(blobs_npz, run, epochs=1)).fit()  # the holder died: its .lock blocks nobody
    assert not (run / ".lock").exists()


def test_a_finished_run_is_not_overwritten_without_overwrite(blobs_npz, tmp_path, capsys, single_thread):
    run = tmp_path / "run"
    Trainer(small_config(blobs_npz, run, epochs=1, report=False)).fit()
    before = {name: (run / name).read_bytes() for name in ("summary.json", "best.pt", "config.yaml")}
    assert main(train_argv(blobs_npz, run, "--epochs", "2")) == 2
    assert capsys.readouterr().err == (
        f"convcoach: error: --out {run} holds a finished run (summary.json): give another --out, --overwrite to "
        f"replace it, or --resume {run} --epochs N to train it further\n"
    )
    assert {name: (run / name).read_bytes() for name in before} == before
    summary = Trainer(small_config(blobs_npz, run, epochs=2, report=False, overwrite=True)).fit()
    assert summary["epochs_run"] == 2 and json.loads((run / "summary.json").read_text())["epochs_run"] == 2
    assert "overwrite: false" in (run / "config.yaml").read_text()  # a rerun of config.yaml asks again


def test_an_unfinished_run_is_refused_and_resumes(blobs_npz, tmp_path, single_thread):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        Trainer(small_config(blobs_npz, run, epochs=3, report=False), callbacks=[interrupt_after_epoch(1)]).fit()
    assert not (run / ".lock").exists()  # an interrupted run gives the directory up for its --resume
    with pytest.raises(ConfigError, match=r"holds an unfinished run \(config.yaml and last.pt, no summary.json\)"):
        Trainer(small_config(blobs_npz, run, epochs=3, report=False))
    assert Trainer(small_config(blobs_npz, run, epochs=3, report=False, resume=str(run))).fit()["epochs_run"] == 3


def test_trains_started_in_one_second_without_out_get_two_directories(blobs_npz, tmp_path, monkeypatch, frozen_clock):
    monkeypatch.chdir(tmp_path)
    config = dataclasses.replace(small_config(blobs_npz, tmp_path, epochs=1), out=None)
    first, second = Trainer(config), Trainer(dataclasses.replace(config))
    assert (str(first.run_dir), str(second.run_dir)) == ("runs/20260102-030405", "runs/20260102-030405-2")
    first.release_run_dir()
    second.release_run_dir()


def test_a_lock_file_nobody_holds_is_taken_and_rewritten(tmp_path):
    (tmp_path / ".lock").write_text("pid 999999 on elsewhere since 2020-01-01 00:00:00\n")
    lock = run_dirs.lock_run_dir(tmp_path)
    assert (tmp_path / ".lock").read_text().startswith(f"pid {os.getpid()} on {socket.gethostname()}")
    assert run_dirs.lock_run_dir(tmp_path) is lock and lock.claims == 2  # one process, one owner
    lock.release()
    assert (tmp_path / ".lock").exists()
    lock.release()
    assert not (tmp_path / ".lock").exists()
