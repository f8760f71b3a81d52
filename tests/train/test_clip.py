"""Gradient clipping (`--clip-grad NORM`): the global norm is capped before each step, the monitors log
the pre-clip norm, summary.json says how often it clipped."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import small_config

from convcoach import Trainer
from convcoach.cli import main
from convcoach.train.callbacks import Callback, Priority


class _Norms(Callback):
    """The gradients' global L2 norm at on_before_optimizer_step, read before or after the clipping."""

    def __init__(self, order: int) -> None:
        self.order = order
        self.norms: list[float] = []

    def on_before_optimizer_step(self, trainer):
        grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        self.norms.append(torch.nn.utils.get_total_norm(grads).item())


def _run(blobs_npz, tmp_path, **overrides):
    before, after = _Norms(Priority.CLIP_GRAD - 1), _Norms(Priority.CLIP_GRAD + 1)
    config = small_config(blobs_npz, tmp_path / "run", monitor_every=2, report=False, **overrides)
    summary = Trainer(config, callbacks=[before, after]).fit()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    return summary, rows, before.norms, after.norms


def test_clipping_caps_the_global_norm_and_the_monitor_logs_the_norm_before_it(blobs_npz, tmp_path, single_thread):
    summary, rows, before, after = _run(blobs_npz, tmp_path, clip_grad=0.5, lr=0.2)
    assert len(before) == len(after) == summary["steps"] == 12  # 4 steps per epoch, 3 epochs
    assert all(norm <= 0.5 * (1 + 1e-5) for norm in after)
    assert all(b == pytest.approx(a, rel=1e-5) for b, a in zip(before, after) if b <= 0.5)
    logged = {r["step"]: r["clip_grad"] for r in rows if r["kind"] == "monitor" and r["monitor"] == "gradients"}
    assert sorted(logged) == [1, 2, 4, 6, 8, 10, 12]
    for step, clip in logged.items():
        assert clip == {"norm": pytest.approx(before[step - 1], rel=1e-6), "max_norm": 0.5}
    clipped = sum(norm > 0.5 for norm in before)
    assert 0 < clipped < len(before)  # the test sees both cases
    assert summary["clip_grad"] == {
        "max_norm": 0.5,
        "steps": 12,
        "clipped_fraction": pytest.approx(clipped / 12),
        "norm_mean": pytest.approx(sum(before) / 12, rel=1e-6),
        "norm_max": pytest.approx(max(before), rel=1e-6),
    }


def test_without_clip_grad_nothing_is_clipped_or_logged(blobs_npz, tmp_path, single_thread):
    summary, rows, before, after = _run(blobs_npz, tmp_path, epochs=1)
    assert before == after and "clip_grad" not in summary
    assert not any("clip_grad" in r for r in rows)


def test_accumulated_gradients_are_clipped_once_per_optimizer_step(blobs_npz, tmp_path, single_thread):
    summary, _, before, after = _run(blobs_npz, tmp_path, clip_grad=0.5, accumulate=2, epochs=1)
    assert len(before) == summary["steps"] == summary["clip_grad"]["steps"] == 2  # 4 micro-batches in groups of 2
    assert all(norm <= 0.5 * (1 + 1e-5) for norm in after)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "clip_grad must be > 0, got 0.0"),
        ("-1", "clip_grad must be > 0, got -1.0"),
        ("nan", "clip_grad: 'nan' is not a finite number"),
        ("inf", "clip_grad: 'inf' is not a finite number"),
    ],
)
def test_clip_grad_must_be_a_positive_finite_norm(blobs_npz, tmp_path, capsys, value, message):
    assert main(["train", "--data", f"npz:{blobs_npz}", "--clip-grad", value, "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == f"convcoach: error: {message}\n"


@pytest.mark.cuda
def test_fp16_gradients_are_unscaled_before_they_are_clipped(blobs_npz, tmp_path):
    # the GradScaler multiplies the loss by 65536: a norm read before unscaling would be that much larger
    summary, rows, before, after = _run(blobs_npz, tmp_path, clip_grad=0.5, precision="fp16", device="cuda", epochs=1)
    assert summary["precision"] == "fp16"
    finite = [norm for norm in before if norm == norm and norm != float("inf")]
    assert finite and max(finite) < 100 and all(norm <= 0.5 * (1 + 1e-3) for norm in after if norm == norm)
    logged = [r["clip_grad"]["norm"] for r in rows if r["kind"] == "monitor" and r["monitor"] == "gradients"]
    assert logged[0] == pytest.approx(before[0], rel=1e-5)
