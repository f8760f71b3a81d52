"""The coach's instruments: alpha (step size along the update) and the gradient-noise scale on worked
examples, activation histograms, a run with them trains bit for bit like one without, the report draws them."""

from __future__ import annotations

import json
import math
import re
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from conftest import small_config

from convcoach import Trainer
from convcoach.coach.instruments import (
    NOISE_SMOOTHING,
    STRIDE,
    NoiseMonitor,
    StepSizeMonitor,
    fit_alpha,
    noise_estimates,
)
from convcoach.coach.monitors import HIST_BINS, HIST_LIMIT, activation_histogram, default_monitors
from convcoach.render.html import Page
from convcoach.report.run_files import load_run
from convcoach.report.sections import monitor_section
from convcoach.train.accumulate import Accumulation

pytestmark = pytest.mark.usefixtures("single_thread")


def _rows(run_dir, monitor: str) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == "monitor" and r["monitor"] == monitor]


def test_fit_alpha_reads_a_quadratic_exactly():
    # f(w) = h/2 w^2 from w0 = 1: a gradient step of lr moves to 1 - lr h; along the step s in [0, 1]
    # f(s) = h/2 (1 - s lr h)^2, so the minimum is at s* = 1 / (lr h) and alpha = lr h - 1
    h = 2.0
    for lr, expected in ((0.5 / h, -0.5), (1 / h, 0.0), (2 / h, 1.0), (3 / h, 2.0)):
        d = -lr * h
        fit = fit_alpha(h / 2, h / 2 * (1 + d) ** 2, h * d, h * (1 + d) * d)
        assert fit["alpha"] == pytest.approx(expected, abs=1e-9)
    assert fit_alpha(1.0, 0.4, -1.0, -0.2)["alpha"] == pytest.approx(-0.2, abs=1e-9)  # f = 1 - s + 0.4 s^2: s* = 1.25
    assert "alpha" not in (concave := fit_alpha(1.0, -0.25, -1.0, -1.5)) and concave["concave"] == 1.0
    assert "alpha" not in (uphill := fit_alpha(1.0, 2.0, 0.5, 1.5)) and uphill["uphill"] == 1.0


def _fake_trainer(model: nn.Module, loss_fn) -> SimpleNamespace:
    return SimpleNamespace(
        model=model,
        loss_fn=loss_fn,
        penalty=None,
        penalty_params=[],
        precision="fp32",
        device=torch.device("cpu"),
        scaler=None,
        state=SimpleNamespace(step=0, epoch=0),
        dist=SimpleNamespace(enabled=False, world_size=1),
        accumulation=Accumulation(every=1, micro_batches=1),  # no --accumulate: every batch steps
        train_loader=SimpleNamespace(position=1),
        callbacks=[],
    )


def _one_step(trainer, monitors, optimizer, x, y) -> float:
    """Trainer.train_step's events around one SGD step."""
    for monitor in monitors:
        x, y = monitor.on_batch_start(trainer, x, y)
    loss = trainer.loss_fn(trainer.model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    for monitor in monitors:
        monitor.on_before_optimizer_step(trainer)
    optimizer.step()
    trainer.state.step += 1
    for monitor in monitors:
        monitor.on_batch_end(trainer, loss.item())
    return loss.item()


@pytest.mark.parametrize("multiple", [1.0, 2.0])
def test_step_size_alpha_on_least_squares_is_lr_times_curvature_minus_one(multiple):
    # linear least squares: the loss is exactly quadratic with Hessian H = 2 X^T X / n; plain SGD moves along
    # -g, whose curvature is k = g^T H g / |g|^2: lr = 1/k lands on the minimum (alpha 0), 2/k beyond (alpha 1)
    torch.manual_seed(0)
    x, y = torch.randn(64, 5), torch.randn(64, 1)
    model = nn.Linear(5, 1, bias=False)
    trainer = _fake_trainer(model, nn.MSELoss())
    g = torch.autograd.grad(trainer.loss_fn(model(x), y), model.weight)[0].flatten()
    hessian = 2 * x.T @ x / len(x)
    curvature = (g @ hessian @ g / (g @ g)).item()
    monitor = StepSizeMonitor(every=1)
    monitor.on_train_start(trainer)
    optimizer = torch.optim.SGD(model.parameters(), lr=multiple / curvature)
    before = model.weight.detach().clone()
    _one_step(trainer, [monitor], optimizer, x, y)
    values = monitor.samples[-1]["layers"]["model"]
    assert values["alpha"] == pytest.approx(multiple - 1.0, abs=1e-3)
    if multiple == 1.0:  # on the minimum along the step
        assert values["loss_after"] < values["loss_before"]
    else:  # the same height on the other side
        assert values["loss_after"] == pytest.approx(values["loss_before"], rel=1e-3)
    # the extra pass read gradients with autograd.grad: .grad still holds the step's own gradient
    assert torch.allclose(model.weight.grad.flatten(), g) and not torch.equal(model.weight.detach(), before)


def test_noise_estimates_recover_trace_sigma_and_gradient_norm_on_synthetic_gradients():
    # per-example gradients G + e, e ~ N(0, diag(sigma^2)): E|G_B|^2 = |G|^2 + tr(Sigma)/B for any B
    generator = torch.Generator().manual_seed(0)
    true_g = torch.tensor([0.3, -0.2, 0.1, 0.0, 0.25, -0.15, 0.05, 0.2], dtype=torch.float64)
    sigma = torch.linspace(0.5, 2.0, 8, dtype=torch.float64)
    trials, big, small = 4000, 64, 32
    samples = true_g + sigma * torch.randn(trials, big, 8, generator=generator, dtype=torch.float64)
    big_sq = samples.mean(dim=1).square().sum(dim=1)
    small_sq = samples[:, :small].mean(dim=1).square().sum(dim=1)  # the first half, as the monitor takes it
    estimates = [noise_estimates(s, b, small, big) for s, b in zip(small_sq.tolist(), big_sq.tolist())]
    grad_sq = sum(e[0] for e in estimates) / trials
    trace = sum(e[1] for e in estimates) / trials
    assert grad_sq == pytest.approx(true_g.square().sum().item(), rel=0.05)
    assert trace == pytest.approx(sigma.square().sum().item(), rel=0.05)
    assert trace / grad_sq == pytest.approx((sigma.square().sum() / true_g.square().sum()).item(), rel=0.1)


def test_noise_monitor_smooths_across_samples_and_survives_a_checkpoint():
    torch.manual_seed(0)
    x, y = torch.randn(32, 5), torch.randn(32, 1)
    model = nn.Linear(5, 1)
    trainer = _fake_trainer(model, nn.MSELoss())
    monitor = NoiseMonitor(every=1)
    monitor.on_train_start(trainer)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(STRIDE + 1):  # samples at 1 and STRIDE
        _one_step(trainer, [monitor], optimizer, x, y)
    assert [row["step"] for row in monitor.samples] == [1, STRIDE]
    first, second = (row["layers"]["model"] for row in monitor.samples)
    assert first["batch"] == second["batch"] == 32
    # the ratio of moving averages (weight NOISE_SMOOTHING), not of the last sample's two estimates
    averaged = [NOISE_SMOOTHING * first[k] + (1 - NOISE_SMOOTHING) * second[k] for k in ("grad_sq", "trace")]
    assert monitor.averages == pytest.approx(averaged, rel=1e-3)
    if averaged[0] > 0 and averaged[1] > 0:
        assert second["noise_scale"] == pytest.approx(averaged[1] / averaged[0], rel=1e-2)
    restored = NoiseMonitor(every=1)
    restored.load_state_dict(monitor.state_dict())
    assert restored.averages == monitor.averages and restored.samples == monitor.samples


def test_activation_histogram_counts_fractions_on_an_asinh_scale():
    values = torch.tensor([[0.0, 0.0, 0.0, 100.0], [-100.0, 0.0, 1.0, 1.0]])
    hist = activation_histogram(values)
    assert hist.shape == (HIST_BINS,) and hist.sum().item() == pytest.approx(1.0)
    assert hist[0].item() == pytest.approx(1 / 8) and hist[-1].item() == pytest.approx(1 / 8)  # clipped to the ends
    assert hist[HIST_BINS // 2].item() == pytest.approx(4 / 8)  # zeros: the bin just above 0
    ones = HIST_BINS // 2 + int(math.asinh(1.0) / (2 * math.asinh(HIST_LIMIT) / HIST_BINS))
    assert hist[ones].item() == pytest.approx(2 / 8)


def test_a_run_with_the_instruments_trains_bit_for_bit_like_one_without(blobs_npz, tmp_path):
    # dropout and BatchNorm: the extra passes must give back the RNG and the running statistics
    options = dict(epochs=2, monitor_every=1, dropout=0.3, mixup=0.4, augment=["hflip"], report=False)
    watched = Trainer(small_config(blobs_npz, tmp_path / "on", **options))
    watched.fit()
    plain = Trainer(small_config(blobs_npz, tmp_path / "off", monitors=False, **options))
    plain.fit()
    ours, theirs = watched.model.state_dict(), plain.model.state_dict()
    assert any("running_mean" in k for k in theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    losses = [
        [
            json.loads(line)["loss"]
            for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()
            if '"iter"' in line
        ]
        for run in ("on", "off")
    ]
    assert losses[0] == losses[1]
    steps = watched.state.step
    expected = [s for s in range(1, steps + 1) if s == 1 or s % STRIDE == 0]
    step_size, noise = _rows(tmp_path / "on", "step_size"), _rows(tmp_path / "on", "noise")
    assert [r["step"] for r in step_size] == expected and [r["step"] for r in noise] == expected
    for row in step_size:
        values = row["layers"]["model"]
        assert ("alpha" in values) != ("concave" in values or "uphill" in values)
        assert values["loss_before"] > 0 and values["loss_after"] > 0
    assert all(r["layers"]["model"]["batch"] == 32 for r in noise)
    activations = _rows(tmp_path / "on", "activations")
    assert len(activations) == steps  # every iteration: the instruments' extra passes were not recorded
    hist = activations[0]["hist"]
    assert hist["bins"] == HIST_BINS and list(hist["layers"]) == [k for k in activations[0]["layers"] if k != "input"]
    assert all(sum(counts) == pytest.approx(1.0, abs=1e-3) for counts in hist["layers"].values())
    summary = json.loads((tmp_path / "on" / "summary.json").read_text())
    assert summary["monitors"]["step_size"]["every"] == STRIDE and summary["monitors"]["noise"]["samples"] == len(noise)

    page = Page("run", "")
    monitor_section(page, load_run(tmp_path / "on"))
    html = "".join(page.sections[0].parts)
    alts = re.findall(r'alt="([^"]+)"', html)
    assert {"step_size alpha", "activation histograms over time"} <= set(alts)
    assert not any(a.startswith(("step_size loss", "noise batch", "noise trace")) for a in alts)
    assert "steps overshoot" in html
    # this tiny run's smoothed noise estimate stays negative (its first sample's trace is): said, not drawn
    assert ("noise noise_scale" in alts) == any("noise_scale" in r["layers"]["model"] for r in noise)
    assert "a larger batch would still" in html or f"no positive estimate in {len(noise)} sample(s)" in html


def test_default_monitors_include_the_instruments_at_an_eighth_of_the_rate():
    monitors = {m.name: m for m in default_monitors(50)}
    assert {"activations", "gradients", "updates", "step_size", "noise"} <= set(monitors)
    assert monitors["step_size"].every == monitors["noise"].every == 50 * STRIDE
    assert monitors["activations"].every == 50
