"""--sam: sharpness-aware minimization (train/sam.py) on worked examples."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import small_config
from torch import nn

from convcoach import Trainer
from convcoach.cli import main
from convcoach.train.sam import Perturbation, frozen_running_stats


def test_the_perturbation_moves_rho_along_the_normalized_gradient_and_back_bit_for_bit():
    a = nn.Parameter(torch.tensor([1.0, 2.0]))
    b = nn.Parameter(torch.tensor([[0.5]]))
    frozen = nn.Parameter(torch.tensor([7.0]))  # no gradient: it stays
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([[4.0]])  # ||g|| = 5
    move = Perturbation([a, b, frozen], rho=0.5)
    assert move.ascend() == pytest.approx(5.0)
    assert a.tolist() == pytest.approx([1.0 + 0.5 * 3 / 5, 2.0])
    assert b.item() == pytest.approx(0.5 + 0.5 * 4 / 5)
    assert frozen.item() == 7.0
    move.descend()
    assert a.tolist() == [1.0, 2.0] and b.item() == 0.5  # exact: restored, not subtracted


def test_a_loss_scale_divides_out_and_a_zero_or_infinite_gradient_leaves_the_weights():
    w = nn.Parameter(torch.tensor([1.0, 1.0]))
    w.grad = torch.tensor([0.0, 1024.0])  # scaled by 1024 (fp16's GradScaler)
    move = Perturbation([w], rho=0.1)
    assert move.ascend(scale=1024.0) == pytest.approx(1.0)
    assert w.tolist() == pytest.approx([1.0, 1.1])
    move.descend()
    for bad in (torch.tensor([0.0, 0.0]), torch.tensor([float("inf"), 1.0])):
        w.grad = bad
        move.ascend()
        assert w.tolist() == [1.0, 1.0]
        move.descend()
        assert w.tolist() == [1.0, 1.0]


def test_batchnorm_normalizes_by_the_batch_but_keeps_its_running_statistics():
    norm = nn.BatchNorm2d(2).train()
    x = torch.randn(8, 2, 3, 3) * 4 + 3
    with frozen_running_stats(norm):
        out = norm(x)
    assert norm.running_mean.tolist() == [0.0, 0.0] and norm.running_var.tolist() == [1.0, 1.0]
    assert norm.num_batches_tracked.item() == 0
    assert out.mean(dim=(0, 2, 3)).abs().max().item() < 1e-5  # the batch's own statistics
    norm(x)  # outside: one update of momentum 0.1 towards the batch mean
    assert norm.num_batches_tracked.item() == 1
    assert torch.allclose(norm.running_mean, 0.1 * x.mean(dim=(0, 2, 3)), atol=1e-6)


def test_one_sam_step_is_sgd_with_the_gradient_taken_at_the_perturbed_weights(blobs_npz, tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(144, 8), nn.Tanh(), nn.Linear(8, 3))
    config = small_config(
        blobs_npz,
        tmp_path / "run",
        sam=0.2,
        optimizer="sgd",
        lr=0.5,
        weight_decay=0.0,
        schedule="constant",
        label_smoothing=0.0,
        monitors=False,
        report=False,
        channels_last=False,
    )
    trainer = Trainer(config, model=net)
    x, y = torch.randn(16, 1, 12, 12), torch.arange(16) % 3
    reference = copy.deepcopy(trainer.model)
    loss, _ = trainer.train_step(x, y)

    params = list(reference.parameters())
    first = nn.functional.cross_entropy(reference(x), y)
    assert loss == pytest.approx(first.item(), rel=1e-6)  # the reported loss is the one at w
    grads = torch.autograd.grad(first, params)
    norm = torch.sqrt(sum((g**2).sum() for g in grads))
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.add_(0.2 * g / norm)
    moved = torch.autograd.grad(nn.functional.cross_entropy(reference(x), y), params)
    with torch.no_grad():
        for p, g, m, ours in zip(params, grads, moved, trainer.model.parameters()):
            expected = p - 0.2 * g / norm - 0.5 * m  # back to w, then the step with the moved gradient
            assert torch.allclose(ours, expected, atol=1e-6)
            plain = p - 0.2 * g / norm - 0.5 * g  # what plain SGD would have done: measurably different
            assert not torch.allclose(ours, plain, atol=1e-4)


def test_a_sam_run_counts_each_batch_once_in_batchnorm_and_finishes(blobs_npz, tmp_path, single_thread):
    trainer = Trainer(small_config(blobs_npz, tmp_path / "run", sam=0.05, epochs=2, report=False))
    x, y = torch.randn(16, 1, 12, 12), torch.arange(16) % 3
    for _ in range(3):
        trainer.train_step(x, y)
    counts = {m.num_batches_tracked.item() for m in trainer.model.modules() if isinstance(m, nn.BatchNorm2d)}
    assert counts == {3}  # one running-statistics update per step, not two
    summary = Trainer(small_config(blobs_npz, tmp_path / "fit", sam=0.05, epochs=2, report=False)).fit()
    assert summary["test_accuracy"] > 0.9
    assert "sam: 0.05" in (tmp_path / "fit" / "config.yaml").read_text()


def test_sam_with_gradient_accumulation_is_refused_in_one_line(blobs_npz, tmp_path, capsys):
    flags = ["--sam", "0.05", "--accumulate", "2"]
    assert main(["train", "--data", f"npz:{blobs_npz}", "--out", str(tmp_path / "r"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convcoach: error: sam 0.05 takes two passes over each batch and accumulate 2 splits it")
    assert err.count("\n") == 1 and not (tmp_path / "r").exists()


def test_the_activation_monitor_keeps_the_first_forward_of_a_step_the_one_at_w():
    from convcoach.coach.monitors import ActivationMonitor

    monitor = ActivationMonitor()
    relu = nn.ReLU()
    monitor.setup(nn.Sequential(relu))
    monitor.captured = {}
    monitor.capture("0", relu, torch.full((4, 3), 2.0))  # the pass at w
    monitor.capture("0", relu, torch.full((4, 3), -1.0))  # --sam's pass at w + e: not recorded
    assert monitor.captured["0"]["mean"].item() == 2.0 and monitor.captured["0"]["dead"].item() == 0.0
