"""The coach on rare classes: its fixes name --class-weights and --sampler, drop the one a run already uses,
and the warning softens to a note (a passing data check) when the run makes up for the imbalance."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_blobs, small_config

from convcoach.coach import run_checks
from convcoach.coach.advice import imbalance_compensation
from convcoach.coach.diagnosis import RunRecord, diagnose

CLASSES = [f"c{i}" for i in range(10)]
COUNTS = [300] * 6 + [6] + [300] * 3


def _verdict(**options):
    rows = [{"kind": "iter", "step": i + 1, "loss": 2.3 - i / 60, "lr": 0.1} for i in range(90)]
    rows += [{"kind": "epoch", "epoch": e, "train_acc": 0.9, "val_acc": 0.85, "val_loss": 0.4} for e in (1, 2, 3)]
    per_class = {name: 0.05 if name == "c6" else 0.85 for name in CLASSES}
    summary = {
        "data": {"classes": CLASSES, "val": 3000, "train": 2000, "test": 10000, "train_class_counts": COUNTS},
        "test_per_class_accuracy": per_class,
        "test_accuracy": 0.8,
        "lr": 0.1,
        "stop_reason": None,
    }
    finding = diagnose(RunRecord.from_rows(rows, summary, {"epochs": 3, **options})).findings
    return next(f for f in finding if f.cause == "class_imbalance")


def test_the_imbalance_warning_names_the_options_that_compensate():
    finding = _verdict()
    assert finding.severity == "warn" and finding.title.startswith("class imbalance: c6 far rarer")
    assert finding.fixes == [
        "--class-weights balanced (weighs the loss by n / (classes x count))",
        "--sampler balanced (draws every class equally often)",
        "collect more images of c6",
    ]


@pytest.mark.parametrize(
    ("options", "by", "other"),
    [
        ({"class_weights": ["balanced"]}, "--class-weights balanced", "--sampler balanced"),
        ({"sampler": "balanced", "class_weights": ["none"]}, "--sampler balanced", "--class-weights balanced"),
        ({"class_weights": ["1"] * 6 + ["20"] + ["1"] * 3}, "--class-weights 1,1,1,1,1,1,20,1,1,1", "--sampler"),
    ],
)
def test_a_run_that_compensates_gets_a_note_without_the_fix_in_use(options, by, other):
    finding = _verdict(**options)
    assert finding.severity == "info" and finding.title.startswith(f"class imbalance, compensated by {by}: c6")
    assert imbalance_compensation(options) == by
    assert not any(fix.startswith(by) for fix in finding.fixes) and any(f.startswith(other) for f in finding.fixes)


def _two_classes(tmp_path):
    x, y = make_blobs(n_per_class=90, classes=2)
    keep = np.concatenate([np.flatnonzero(y == 0)[:90], np.flatnonzero(y == 1)[:9]])
    x_test, y_test = make_blobs(n_per_class=5, classes=2, seed=1)
    np.savez(tmp_path / "d.npz", x=x[keep], y=y[keep], x_test=x_test, y_test=y_test)
    return tmp_path / "d.npz"


@pytest.mark.parametrize(
    ("options", "status", "suffix"),
    [({}, "warn", ""), ({"sampler": "balanced"}, "pass", ", compensated by --sampler balanced")],
)
def test_the_data_check_names_the_options_and_passes_when_one_is_set(tmp_path, single_thread, options, status, suffix):
    config = small_config(_two_classes(tmp_path), tmp_path / "check", val_fraction=0.0, **options)
    result = run_checks(config, only=["data"]).get("data_balance")
    assert (result.status, result.message) == (
        status,
        f"imbalanced: 9-90 training images per class over 2 classes ('1' is rarest, 10.0x){suffix}",
    )
    if status == "warn":
        assert result.fix.startswith("--class-weights balanced (weighs the loss by n / (classes x count)) or --sampler")
