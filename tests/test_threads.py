"""Threads: the cores other work keeps busy at start-up are measured and left to it (threads.py)."""

from __future__ import annotations

import json
import multiprocessing
import time

import pytest
import torch

from convcoach import threads
from convcoach.threads import CpuSample, choose_threads, others_busy


def test_others_busy_subtracts_this_process_cpu_time():
    # 2 s of wall time; the cores were busy 3.0 s in all, 1.2 s of it this process's own
    before, after = CpuSample(10.0, 100.0, 5.0), CpuSample(12.0, 103.0, 6.2)
    assert others_busy(before, after) == pytest.approx(0.9)
    assert others_busy(after, after) == 0.0


def test_choice_keeps_the_count_when_idle_and_lowers_it_when_busy(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "cores", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.2)
    assert choose_threads(None, 4) == (4, "torch's default (0.2 cores busy with other work at start-up)")
    monkeypatch.setattr(threads, "busy_cores", lambda: 2.6)  # 3 of 4 busy: 1 left
    count, reason = choose_threads(None, 4)
    assert count == 1 and reason.startswith("2.6 of 4 cores busy with other work at start-up: 1 thread(s), not 4")
    monkeypatch.setattr(threads, "busy_cores", lambda: 9.0)  # never below one thread
    assert choose_threads(None, 4)[0] == 1
    monkeypatch.setattr(threads, "busy_cores", lambda: 1.0)  # never above what the caller set
    assert choose_threads(None, 2)[0] == 2


def test_an_explicit_count_wins(monkeypatch):
    monkeypatch.setattr(threads, "busy_cores", lambda: 1.0)
    assert choose_threads(3, 2) == (3, "--threads 3")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert choose_threads(None, 2) == (2, "OMP_NUM_THREADS=2")


def _spin() -> None:
    while True:
        pass


def test_a_busy_process_is_measured_as_one_core():
    if threads.sample() is None:
        pytest.skip("no /proc/stat")
    spinner = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
    spinner.start()
    try:
        time.sleep(1.0)  # the spawned interpreter starts
        threads.mark()
        time.sleep(0.5)
        busy = threads.busy_cores()
    finally:
        spinner.terminate()
    assert 0.7 <= busy <= 1.5  # one core, plus whatever else the machine runs


def test_run_records_threads_and_restores_the_callers_count(tmp_path, blobs_npz, single_thread):
    from conftest import small_config

    from convcoach import train

    train(small_config(blobs_npz, tmp_path / "run", epochs=1, threads=2))
    env = json.loads((tmp_path / "run" / "env.json").read_text())
    assert env["threads"] == 2 and env["threads_reason"] == "--threads 2"
    assert torch.get_num_threads() == 1  # single_thread's count again


def test_a_resume_keeps_the_thread_count_its_run_started_with(tmp_path, blobs_npz, single_thread, monkeypatch):
    from conftest import interrupt_after_epoch, small_config

    from convcoach import TrainConfig, Trainer
    from convcoach.train import loop

    config = small_config(blobs_npz, tmp_path / "run", epochs=3, report=False)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, callbacks=[interrupt_after_epoch(1)]).fit()
    assert json.loads((tmp_path / "run" / "env.json").read_text())["threads"] == 1
    monkeypatch.setattr(loop, "choose_threads", lambda requested, current: (2, "the machine got idle"))
    resumed = Trainer(TrainConfig(resume=str(tmp_path / "run"), quiet=True))
    assert torch.get_num_threads() == 1
    assert resumed.threads_reason == "1 thread(s), as the run it resumes (its results stay bit-identical)"
    resumed.fit()
