"""Multi-node DDP on one host: two torchrun launchers on 127.0.0.1 (c10d rendezvous, one process each, as two
machines run them) train one run; one machine dies mid-run, the other exits instead of hanging, both resume, and
the run ends where one process ends."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import kill_tree, wait_for_epochs

from convcoach.train.checkpoint import load_checkpoint

EPOCHS = 12
# no BatchNorm (its statistics are per process): 2 processes at the same global batch follow 1 process's curve
ARGS = [
    *("--model", "cnn", "--depth", "2", "--width", "8", "--norm", "group:4", "--epochs", str(EPOCHS)),
    *("--batch-size", "32", "--augment", "none", "--lr", "0.05", "--precision", "fp32", "--threads", "1"),
    *("--quiet", "--no-report"),
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_node(port: int, train_args: list[str], log: Path) -> subprocess.Popen:
    """What each machine runs: torchrun joins the c10d rendezvous at the endpoint, which assigns the node ranks."""
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1"),
        *("--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "multinode"),
        *("--local-addr", "127.0.0.1", "-m", "convcoach", "train", *train_args),
    ]
    return subprocess.Popen(command, env=ENV, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_for_listener(port: int, timeout: float = 60.0) -> None:
    """Until the first launcher hosts the rendezvous store on `port` (as machine A, the endpoint, would)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"no rendezvous store on port {port} after {timeout:.0f} s")


def finish(launchers: list[subprocess.Popen], logs: list[Path], timeout: float) -> list[int]:
    """The launchers' exit codes; a launcher still running after `timeout` seconds is a hang: killed, and failed."""
    try:
        return [launcher.wait(timeout=timeout) for launcher in launchers]
    except subprocess.TimeoutExpired:
        for launcher in launchers:
            if launcher.poll() is None:
                kill_tree(launcher)
        pytest.fail(f"a launcher hung for {timeout:.0f} s:\n" + "\n".join(log.read_text()[-1500:] for log in logs))


def losses(run: Path) -> list[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [row["loss"] for row in rows if row["kind"] == "iter"]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds torchrun's workers through Linux's /proc")
def test_two_nodes_killed_mid_run_and_resumed_match_one_process(blobs_npz, tmp_path):
    one, run = tmp_path / "one", tmp_path / "two-nodes"
    train = [sys.executable, "-m", "convcoach", "train", "--data", f"npz:{blobs_npz}", *ARGS]
    subprocess.run([*train, "--out", str(one)], env=ENV, check=True, capture_output=True)

    port, logs = free_port(), [tmp_path / "a.log", tmp_path / "b.log"]
    first = launch_node(port, [*train[4:], "--out", str(run)], logs[0])
    wait_for_listener(port)
    second = launch_node(port, [*train[4:], "--out", str(run)], logs[1])
    wait_for_epochs(run, 1)
    kill_tree(second)
    # the survivor's next all-reduce finds its peer gone (gloo: connection reset), its launcher stops it and exits
    assert finish([first], logs, timeout=60) != [0]
    assert load_checkpoint(run / "last.pt")["state"]["epoch"] < EPOCHS  # killed mid-run

    port, logs = free_port(), [tmp_path / "a2.log", tmp_path / "b2.log"]
    nodes = [launch_node(port, ["--resume", str(run), "--quiet"], log) for log in logs]
    assert finish(nodes, logs, timeout=120) == [0, 0], logs[0].read_text()[-2000:]

    assert json.loads((run / "env.json").read_text())["processes"] == 2
    assert losses(run) == pytest.approx(losses(one), abs=1e-5)  # float summation order apart, the same curve
    ours, theirs = load_checkpoint(run / "best.pt")["model_state"], load_checkpoint(one / "best.pt")["model_state"]
    assert all(torch.allclose(ours[k].float(), theirs[k].float(), atol=1e-5) for k in theirs)
    summaries = [json.loads((path / "summary.json").read_text()) for path in (run, one)]
    assert summaries[0]["test_accuracy"] == summaries[1]["test_accuracy"]
