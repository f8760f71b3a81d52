"""`convcoach check`: each pre-training check measures what the lectures say, and the command's output."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn as nn
from conftest import small_config

from convcoach.cli import main
from convcoach.coach import CheckBudget, run_checks
from convcoach.coach.checks.gradients import gradient_check
from convcoach.coach.checks.lr_sweep import batch_factor, classify

pytestmark = pytest.mark.usefixtures("single_thread")

FAST = CheckBudget(subset=256, overfit_steps=60, sweep_steps=6, sweep_points_per_decade=1)


def test_healthy_blobs_pass_every_check(blobs_npz, tmp_path):
    report = run_checks(small_config(blobs_npz, tmp_path), budget=FAST)
    assert {r.name: r.status for r in report.results} == {name: "pass" for name in (
        "data_normalization", "data_balance", "data_duplicates", "data_labels", "initial_loss", "regularization",
        "activations", "gradients", "overfit", "lr_sweep")}
    assert report.get("initial_loss").details["expected"] == pytest.approx(math.log(3))
    assert report.get("overfit").details["steps"] <= 60
    assert report.get("gradients").details["errors"]  # one entry per parameter tensor
    assert max(report.get("gradients").details["errors"].values()) < 1e-4


def test_svm_initial_loss_is_compared_with_c_minus_1(blobs_npz, tmp_path):
    result = run_checks(small_config(blobs_npz, tmp_path, loss="svm"), only=["initial_loss"]).get("initial_loss")
    assert result.details["expected"] == 2.0 and "expected 3 - 1 = 2" in result.message


def test_regularization_raises_the_loss(blobs_npz, tmp_path):
    result = run_checks(small_config(blobs_npz, tmp_path, reg="l2:1e-4"), only=["regularization"]).get("regularization")
    details = result.details
    assert result.status == "pass" and details["loss_cranked"] > details["loss_at_configured"] > details["data_loss"]
    # cranked 1000x ("crank up regularization"): the penalty grows by exactly that factor
    assert details["cranked_lambda"] == pytest.approx(0.1)
    assert details["loss_cranked"] - details["data_loss"] == pytest.approx(1000 * (details["loss_at_configured"] - details["data_loss"]), rel=1e-3)


class _WrongTanh(torch.autograd.Function):
    """tanh whose backward forgets the square: dy/dx = 1 - y instead of 1 - y^2."""

    @staticmethod
    def forward(ctx, x):  # noqa: ANN001, ANN205
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        (y,) = ctx.saved_tensors
        return grad * (1 - y)


class _Net(nn.Module):
    def __init__(self, wrong: bool) -> None:
        super().__init__()
        self.hidden, self.out, self.wrong = nn.Linear(144, 8), nn.Linear(8, 3), wrong

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.hidden(x.flatten(1))
        return self.out(_WrongTanh.apply(h) if self.wrong else torch.tanh(h))


def test_gradient_check_finds_a_wrong_custom_backward(blobs_npz, tmp_path):
    config = small_config(blobs_npz, tmp_path)
    good = run_checks(config, model=_Net(wrong=False), only=["gradients"]).get("gradients")
    bad = run_checks(config, model=_Net(wrong=True), only=["gradients"]).get("gradients")
    assert good.status == "pass" and max(good.details["errors"].values()) < 1e-6
    assert bad.status == "fail" and bad.details["worst"] == "hidden.weight" and bad.details["errors"]["hidden.weight"] > 1e-2
    assert bad.details["errors"]["out.weight"] < 1e-6  # the layer after the broken op is still right
    assert "the backward pass of the layer owning 'hidden.weight' is wrong" in bad.fix


def test_gradient_check_relative_errors_in_float64():
    torch.manual_seed(0)
    errors = gradient_check(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)), torch.randn(2, 1, 6, 6), entries=4)
    assert list(errors) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert max(e["error"] for e in errors.values()) < 1e-7


def test_lr_sweep_labels_runs_and_scales_the_batch():
    runs = [{"lr": lr, "drop": drop, "verdict": verdict} for lr, drop, verdict in
            [(1e-4, 0.001, ""), (1e-3, 0.05, ""), (1e-2, 0.2, ""), (1e-1, 0.15, ""), (1.0, 0.0, "too high")]]
    classify(runs)
    assert [r["verdict"] for r in runs] == ["too low", "ok", "good", "good", "too high"]
    assert batch_factor("sgd", 32, 256) == 0.125 and batch_factor("adam", 64, 256) == 0.5


@pytest.mark.parametrize("optimizer, factor", [("sgd", 20 / 256), ("adam", math.sqrt(20 / 256))])
def test_overfit_scales_the_lr_to_its_20_examples_as_the_sweep_does(blobs_npz, tmp_path, optimizer, factor):
    # both checks judge the LR the run uses at batch 256, each at its own batch: consistent verdicts
    config = small_config(blobs_npz, tmp_path, optimizer=optimizer, lr=0.4, batch_size=256)
    details = run_checks(config, only=["overfit"], budget=FAST).get("overfit").details
    assert details["lr"] == 0.4 and details["batch_lr"] == pytest.approx(0.4 * factor)


def test_unknown_check_name_is_a_one_line_error(blobs_npz, tmp_path, capsys):
    code = main(["check", "--data", f"npz:{blobs_npz}", "--only", "initial_los", "--out", str(tmp_path / "c")])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "convcoach: error: unknown check 'initial_los' (did you mean 'initial_loss'?); "
        "known: activations, data, gradients, initial_loss, lr_sweep, overfit, regularization")


def test_check_cli_prints_the_table_and_writes_check_json(blobs_npz, tmp_path, capsys):
    out = tmp_path / "check"
    code = main(["check", "--data", f"npz:{blobs_npz}", "--model", "cnn", "--depth", "2", "--width", "8", "--batch-size", "32",
                 "--lr", "50", "--optimizer", "sgd", "--only", "lr_sweep,initial_loss", "--quick", "--out", str(out)])
    printed = capsys.readouterr().out
    report = json.loads((out / "check.json").read_text())
    assert code == 1  # a failing check exits 1
    assert [r["name"] for r in report["results"]] == ["lr_sweep", "initial_loss"] and report["status"] == "fail"
    assert report["results"][0]["status"] == "fail" and "lr 50 is too high" in report["results"][0]["message"]
    assert "lr_sweep" in printed and "fail" in printed and "check.json written" in printed


@pytest.mark.slow
def test_check_on_the_default_model_finishes_with_initial_loss_near_ln10(tmp_path, capsys):
    code = main(["check", "--subset", "300", "--quick", "--out", str(tmp_path / "check")])
    report = json.loads((tmp_path / "check" / "check.json").read_text())
    initial = next(r for r in report["results"] if r["name"] == "initial_loss")
    assert code == 0 and report["status"] in ("pass", "warn")
    assert initial["details"]["expected"] == pytest.approx(math.log(10))
    assert initial["details"]["loss"] == pytest.approx(math.log(10), abs=0.5)
    assert len(report["results"]) == 10
