"""Gradient accumulation (`--accumulate N`): N micro-batches per optimizer step, the same run as one batch N
times larger (without BatchNorm), the schedule counted in optimizer steps, resumes at step boundaries, DDP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import interrupt_at_step, make_blobs, small_config

from convcoach import Trainer
from convcoach.cli import main
from convcoach.train.accumulate import Accumulation
from convcoach.train.callbacks import Callback
from convcoach.train.checkpoint import load_checkpoint
from convcoach.train.setup import config_lr, effective_lr


@pytest.fixture
def blobs_750(tmp_path: Path) -> Path:
    """750 images, 540 of them for training: 2 batches of 256 (8 micro-batches of 64) per epoch."""
    x, y = make_blobs(n_per_class=250)
    path = tmp_path / "blobs750.npz"
    np.savez(path, x=x, y=y)
    return path


def _iterations(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == "iter"]


def _no_batchnorm(data: Path, out: Path, **overrides):
    # norm none: BatchNorm would see 64 images instead of 256; no dropout, flips or mixup: no draws per batch
    values = dict(norm="none", schedule="onecycle", epochs=2, monitors=False, report=False, tta="none")
    return small_config(data, out, **{**values, **overrides})


def test_micro_batch_groups_end_at_every_nth_and_the_epoch_end():
    plan = Accumulation(every=3, micro_batches=7)
    assert plan.steps_per_epoch == 3  # 3 + 3 + 1: the last, smaller group still steps
    placed = [plan.at(position) for position in range(1, 8)]
    assert [m.first for m in placed] == [True, False, False, True, False, False, True]
    assert [m.last for m in placed] == [False, False, True, False, False, True, True]
    assert [m.group_size for m in placed] == [3, 3, 3, 3, 3, 3, 1]


def test_batch_64_accumulated_4_times_matches_batch_256(blobs_750, tmp_path, single_thread):
    whole = Trainer(_no_batchnorm(blobs_750, tmp_path / "whole", batch_size=256))
    micro = Trainer(_no_batchnorm(blobs_750, tmp_path / "micro", batch_size=64, accumulate=4))
    assert (len(whole.train_loader), len(micro.train_loader)) == (2, 8)
    assert whole.total_steps == micro.total_steps == 4  # the schedule counts optimizer steps
    whole.fit(), micro.fit()
    ours, theirs = _iterations(tmp_path / "micro"), _iterations(tmp_path / "whole")
    assert [r["step"] for r in ours] == [r["step"] for r in theirs] == [1, 2, 3, 4]
    assert [r["lr"] for r in ours] == [r["lr"] for r in theirs]
    # the mean of four micro-batch losses is the batch's mean loss: equal up to float summation order
    assert [r["loss"] for r in ours] == pytest.approx([r["loss"] for r in theirs], rel=1e-5)
    assert micro.scheduler.last_epoch == whole.scheduler.last_epoch == 4
    weights, reference = micro.model.state_dict(), whole.model.state_dict()
    assert all(torch.allclose(weights[k], reference[k], rtol=1e-4, atol=1e-6) for k in reference)
    assert micro.summary["final"]["train_loss"] == pytest.approx(whole.summary["final"]["train_loss"], rel=1e-5)


def test_the_epochs_last_smaller_group_still_steps(blobs_npz, tmp_path, single_thread):
    # 129 training images, batch 24: 5 micro-batches per epoch, accumulate 2: groups of 2, 2, 1
    steps: list[int] = []

    class CountSteps(Callback):
        def on_before_optimizer_step(self, trainer):
            steps.append(trainer.train_loader.position)

    config = _no_batchnorm(blobs_npz, tmp_path / "run", batch_size=24, accumulate=2, monitors=True, monitor_every=1)
    trainer = Trainer(config, callbacks=[CountSteps()])
    assert (len(trainer.train_loader), trainer.steps_per_epoch, trainer.total_steps) == (5, 3, 6)
    summary = trainer.fit()
    assert steps == [2, 4, 5, 2, 4, 5] and summary["steps"] == 6 and trainer.scheduler.last_epoch == 6
    # the monitors sample once per optimizer step, and the activation hooks of a group's micro-batches are all gone
    assert summary["monitors"]["activations"]["samples"] == summary["monitors"]["gradients"]["samples"] == 6
    assert not any(module._forward_hooks for module in trainer.model.modules())


def test_lr_scaling_and_the_auto_lr_inverse_use_the_effective_batch(blobs_npz, tmp_path):
    config = small_config(blobs_npz, tmp_path, lr=0.1, batch_size=64, accumulate=4, base_batch_size=128).validate()
    assert effective_lr(config) == pytest.approx(0.2)  # 0.1 x (64 x 4) / 128
    assert config_lr(config, 0.2) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("value", "message"),
    [("0", "accumulate must be >= 1, got 0"), ("2.5", "accumulate: '2.5' is not a valid int")],
)
def test_accumulate_must_be_a_positive_integer(blobs_npz, tmp_path, capsys, value, message):
    assert main(["train", "--data", f"npz:{blobs_npz}", "--accumulate", value, "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == f"convcoach: error: {message}\n"
    assert not (tmp_path / "x").exists()


def test_a_run_killed_mid_epoch_resumes_from_a_step_boundary_to_identical_weights(blobs_npz, tmp_path, single_thread):
    # 5 micro-batches per epoch in groups of 2, 2, 1; mixup draws per micro-batch; saves after every step
    options = dict(
        batch_size=24,
        accumulate=2,
        checkpoint_every=1,
        mixup=0.4,
        augment=["hflip"],
        monitors=True,
        monitor_every=2,
        epochs=3,
    )
    saved_at: list[int] = []

    class Saves(Callback):
        def on_checkpoint(self, trainer):
            saved_at.append(trainer.train_loader.position)

    Trainer(_no_batchnorm(blobs_npz, tmp_path / "reference", **options), callbacks=[Saves()]).fit()
    assert saved_at == [2, 4] * 3  # mid-epoch saves only where a step ended (position 5 ends the epoch)
    with pytest.raises(KeyboardInterrupt):
        Trainer(_no_batchnorm(blobs_npz, tmp_path / "killed", **options), callbacks=[interrupt_at_step(5)]).fit()
    saved = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert (saved["state"]["step"], saved["state"]["epoch"], saved["loader_state"]["position"]) == (4, 1, 2)
    Trainer(_no_batchnorm(blobs_npz, tmp_path / "killed", resume=str(tmp_path / "killed"), **options)).fit()
    ours, theirs = load_checkpoint(tmp_path / "killed" / "last.pt"), load_checkpoint(tmp_path / "reference" / "last.pt")
    assert all(torch.equal(ours["model_state"][k], theirs["model_state"][k]) for k in theirs["model_state"])
    rows = [(tmp_path / run / "metrics.jsonl").read_text().splitlines() for run in ("killed", "reference")]
    strip = [[{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines] for lines in rows]
    assert strip[0] == strip[1]


@pytest.mark.slow
def test_two_gloo_processes_accumulating_2_match_one_process_at_the_same_effective_batch(blobs_npz, tmp_path):
    base = [sys.executable, "-m", "convcoach", "train", "--data", f"npz:{blobs_npz}", "--model", "cnn", "--depth"]
    base += ["2", "--width", "8", "--norm", "group:4", "--epochs", "2", "--augment", "none", "--lr", "0.05"]
    base += ["--quiet", "--precision", "fp32", "--no-report", "--no-monitors", "--tta", "none"]
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([*base, "--batch-size", "64", "--out", str(one)], check=True, capture_output=True)
    # 2 processes x 16 images per micro-batch x 2 micro-batches = the same 64 images per optimizer step
    command = [*base, "--batch-size", "32", "--accumulate", "2", "--nproc", "2", "--out", str(two)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    single, double = _iterations(one), _iterations(two)
    assert len(single) == len(double) == 4
    assert [r["loss"] for r in double] == pytest.approx([r["loss"] for r in single], abs=1e-4)


def test_under_ddp_only_a_groups_last_micro_batch_all_reduces(blobs_npz, tmp_path, single_thread):
    import torch.distributed as dist

    trainer = Trainer(_no_batchnorm(blobs_npz, tmp_path / "run", batch_size=24, accumulate=3))
    store = dist.HashStore()
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        trainer.model = torch.nn.parallel.DistributedDataParallel(trainer.model)
        reductions: list[int] = []

        def count(state, bucket):
            reductions.append(trainer.train_loader.position)
            return dist.all_reduce(bucket.buffer(), async_op=True).get_future().then(lambda f: f.value()[0])

        trainer.model.register_comm_hook(None, count)
        for x, y in trainer.train_loader:
            trainer.train_step(x, y, trainer.accumulation.at(trainer.train_loader.position))
    finally:
        dist.destroy_process_group()
    assert sorted(set(reductions)) == [3, 5]  # groups of 3 and 2 micro-batches: one all-reduce each
