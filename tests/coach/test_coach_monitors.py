"""Training monitors: rows in metrics.jsonl every N iterations, per-layer numbers, summary.json, off switch."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn
from conftest import small_config

from convcoach import Trainer
from convcoach.coach.monitors import ActivationMonitor, UpdateMonitor, default_monitors

pytestmark = pytest.mark.usefixtures("single_thread")


def _rows(run_dir, monitor: str) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == "monitor" and r["monitor"] == monitor]


def test_monitors_log_every_n_iterations_and_summarize(blobs_npz, tmp_path):
    trainer = Trainer(small_config(blobs_npz, tmp_path / "run", epochs=2, monitor_every=3, report=False))
    summary = trainer.fit()
    steps = trainer.state.step  # 4 batches of 32 per epoch
    assert steps == 8
    relus = [name for name, m in trainer.model.named_modules() if isinstance(m, nn.ReLU)]
    for monitor in ("activations", "gradients", "updates"):
        rows = _rows(tmp_path / "run", monitor)
        assert [r["step"] for r in rows] == [1, 3, 6]  # the first iteration, then every 3
        assert summary["monitors"][monitor]["samples"] == 3
    activations = _rows(tmp_path / "run", "activations")[0]["layers"]
    assert list(activations) == ["input", *relus]
    assert activations["input"]["mean"] == pytest.approx(0.0, abs=0.2) and activations["input"]["std"] == pytest.approx(
        1.0, abs=0.2
    )
    assert all(0.0 <= activations[name]["dead"] <= 1.0 for name in relus)
    convs = [name for name, m in trainer.model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert list(_rows(tmp_path / "run", "gradients")[0]["layers"]) == convs
    assert summary["diagnosis"]["healthy"] and summary["diagnosis"]["causes"] == [
        "too_short"
    ]  # 8 steps: no monitor alarm, curves unread


def test_update_ratio_is_lr_times_gradient_norm_over_weight_norm_for_plain_sgd(blobs_npz, tmp_path):
    # SGD without momentum or decay: W1 - W0 = -lr * g, so ||W1 - W0|| / ||W0|| = lr * ||g|| / ||W0||
    config = small_config(
        blobs_npz,
        tmp_path / "run",
        model="mlp",
        depth=2,
        width=32,
        norm="none",
        optimizer="sgd",
        lr=0.01,
        weight_decay=0.0,
        epochs=1,
        monitor_every=100,
        report=False,
    )
    trainer = Trainer(config)
    initial = {
        name: m.weight.detach().norm().item() for name, m in trainer.model.named_modules() if isinstance(m, nn.Linear)
    }
    trainer.fit()
    grads = _rows(tmp_path / "run", "gradients")[0]["layers"]
    updates = _rows(tmp_path / "run", "updates")[0]["layers"]
    for name, norm in initial.items():
        assert updates[name]["update_ratio"] == pytest.approx(0.01 * grads[name]["grad_norm"] / norm, rel=1e-3)


def test_dead_units_are_reported_per_layer(blobs_npz, tmp_path):
    config = small_config(
        blobs_npz, tmp_path / "run", model="mlp", depth=2, width=16, norm="none", epochs=1, report=False
    )
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(144, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    with torch.no_grad():
        model[1].bias[:8] = -1e4  # half the units of the first layer can never fire
    Trainer(config, model=model).fit()
    layers = _rows(tmp_path / "run", "activations")[0]["layers"]
    assert layers["2"]["dead"] == 0.5


def test_no_monitors_switch(blobs_npz, tmp_path):
    summary = Trainer(small_config(blobs_npz, tmp_path / "run", epochs=1, monitors=False, report=False)).fit()
    assert _rows(tmp_path / "run", "activations") == [] and "monitors" not in summary
    assert summary["diagnosis"]["healthy"] and summary["diagnosis"]["causes"] == [
        "too_short"
    ]  # 8 steps: no monitor alarm, curves unread  # the curves alone still get a diagnosis


def test_monitor_state_survives_a_checkpoint_and_hooks_are_removed():
    monitors = default_monitors(7)
    assert [type(m) for m in monitors][:1] == [ActivationMonitor] and any(
        isinstance(m, UpdateMonitor) for m in monitors
    )
    monitor = ActivationMonitor(5)
    monitor.samples = [
        {"kind": "monitor", "monitor": "activations", "step": 5, "epoch": 0, "layers": {"a": {"std": 1.0}}}
    ]
    restored = ActivationMonitor(5)
    restored.load_state_dict(monitor.state_dict())
    assert restored.summarize()["last"] == {"a": {"std": 1.0}}
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    restored.setup(model)
    assert all(not m._forward_hooks for m in model.modules())
