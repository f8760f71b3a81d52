"""DistributedDataParallel on CPU (gloo): 2 processes follow the 1-process loss curve at the same global batch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from conftest import kill_tree, wait_for_epochs

from convcoach.errors import ConfigError
from convcoach.train.checkpoint import load_checkpoint
from convcoach.train.distributed import DistContext, launched_by_torchrun, torchrun_command, unwrap, wrap_model

ARGS = [
    "--model",
    "cnn",
    "--depth",
    "2",
    "--width",
    "8",
    "--norm",
    "group:4",
    "--epochs",
    "3",
    "--batch-size",
    "32",
    "--augment",
    "none",
    "--lr",
    "0.05",
    "--quiet",
    "--precision",
    "fp32",
]


def _losses(run) -> list[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r["kind"] == "iter"]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_loss_curve(blobs_npz, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    base = [sys.executable, "-m", "convcoach", "train", "--data", f"npz:{blobs_npz}", *ARGS]
    subprocess.run([*base, "--out", str(one)], check=True, capture_output=True)
    result = subprocess.run([*base, "--out", str(two), "--nproc", "2"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]  # the workers' own output: an abort names its cause there
    single, double = _losses(one), _losses(two)
    assert len(single) == len(double) == 12  # 129 samples // 32 per global batch, 3 epochs
    # same samples per global batch, gradients averaged by DDP: equal up to float summation order
    assert max(abs(a - b) for a, b in zip(single, double)) < 1e-4
    # the checkpoint rank 0 wrote loads in a single process
    code = subprocess.run(
        [
            sys.executable,
            "-m",
            "convcoach",
            "eval",
            "--checkpoint",
            str(two / "best.pt"),
            "--out",
            str(tmp_path / "eval"),
        ],
        capture_output=True,
        text=True,
    )
    assert code.returncode == 0, code.stderr
    assert "module." not in next(iter(load_checkpoint(two / "best.pt")["model_state"]))


@pytest.mark.slow
def test_precision_auto_under_ddp_times_the_bare_net_and_every_rank_follows_rank_0(blobs_npz, tmp_path):
    args = [a for a in ARGS if a not in ("--precision", "fp32")] + [
        "--epochs",
        "1",
        "--precision",
        "auto",
        "--no-report",
        "--nproc",
        "2",
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "convcoach",
            "train",
            "--data",
            f"npz:{blobs_npz}",
            *args,
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-4000:]  # the workers' own output: an abort names its cause there
    env = json.loads((tmp_path / "run" / "env.json").read_text())
    assert env["precision"] in ("fp32", "bf16") and env["processes"] == 2


def test_torchrun_command_and_environment_detection(monkeypatch):
    command = torchrun_command(2, ["train", "--epochs", "1"])
    assert command[1:] == [
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "convcoach",
        "train",
        "--epochs",
        "1",
    ]
    with pytest.raises(ConfigError, match="nproc must be >= 2"):
        torchrun_command(1, [])
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not launched_by_torchrun()
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launched_by_torchrun()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not launched_by_torchrun()  # a leftover single-process environment
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")  # torchrun --nproc_per_node 1: DDP on one device
    assert launched_by_torchrun()


def test_sync_bn_on_cpu_is_a_clear_error():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    with pytest.raises(ConfigError, match="SyncBatchNorm has no CPU kernel"):
        wrap_model(model, DistContext(), torch.device("cpu"), sync_bn=True)
    assert wrap_model(model, DistContext(), torch.device("cpu"), sync_bn=False) is model


@pytest.mark.slow
def test_distributed_run_killed_and_resumed_matches_an_uninterrupted_one(blobs_npz, tmp_path):

    base = [
        sys.executable,
        "-m",
        "convcoach",
        "train",
        "--data",
        f"npz:{blobs_npz}",
        *ARGS,
        "--epochs",
        "12",
        "--no-report",
        "--nproc",
        "2",
    ]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    subprocess.run([*base, "--out", str(reference)], check=True, capture_output=True)
    proc = subprocess.Popen(
        [*base, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    wait_for_epochs(killed, 1)  # kill the launcher and both workers once epoch 1 is checkpointed
    kill_tree(proc)  # the launcher and both workers
    assert load_checkpoint(killed / "last.pt")["state"]["epoch"] < 12
    result = subprocess.run(
        [sys.executable, "-m", "convcoach", "train", "--resume", str(killed), "--nproc", "2", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-4000:]  # the workers' own output: an abort names its cause there
    ours, theirs = (
        load_checkpoint(killed / "last.pt")["model_state"],
        load_checkpoint(reference / "last.pt")["model_state"],
    )
    assert all(torch.allclose(ours[k].float(), theirs[k].float(), atol=1e-6) for k in theirs)
    assert _losses(killed) == pytest.approx(_losses(reference), abs=1e-6)


def test_unwrap_removes_torch_compile_and_ddp_wrappers_so_checkpoint_keys_have_no_prefix():
    model = nn.Sequential(nn.Linear(3, 2))
    compiled = torch.compile(model)  # lazy: nothing is compiled until the first call
    assert list(compiled.state_dict()) == ["_orig_mod.0.weight", "_orig_mod.0.bias"]
    assert unwrap(compiled) is model and list(unwrap(compiled).state_dict()) == ["0.weight", "0.bias"]


@pytest.mark.parametrize("cuda, backend", [(True, "cpu:gloo,cuda:nccl"), (False, "gloo")])
def test_on_gpus_the_process_group_also_reduces_cpu_tensors(monkeypatch, cuda, backend):
    # nccl alone takes CUDA tensors only: the epoch's metric sums would fail to all-reduce
    import torch.distributed as dist

    from convcoach.train.distributed import init_distributed

    calls = []
    monkeypatch.setenv("RANK", "1"), monkeypatch.setenv("WORLD_SIZE", "2"), monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", calls.append)
    monkeypatch.setattr(dist, "init_process_group", calls.append)
    monkeypatch.setattr(dist, "get_rank", lambda: 1), monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    context = init_distributed("auto")
    assert calls == ([1, backend] if cuda else [backend]) and (
        context.rank,
        context.world_size,
        context.local_rank,
    ) == (1, 2, 1)


def test_more_processes_than_gpus_is_a_clear_error(monkeypatch):
    from convcoach.train.distributed import init_distributed

    monkeypatch.setenv("RANK", "2"), monkeypatch.setenv("WORLD_SIZE", "3"), monkeypatch.setenv("LOCAL_RANK", "2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"process 2 of this node has no GPU of its own \(2 visible\)"):
        init_distributed("auto")
