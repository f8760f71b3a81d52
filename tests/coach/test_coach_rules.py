"""Diagnosis rules take their place from their registration: every registered rule runs."""

from __future__ import annotations

import math

import pytest

from convcoach.coach.diagnosis import Finding, RunRecord, diagnose
from convcoach.coach.rule_registry import CURVE_RULES
from convcoach.coach.rules import RULES

SUMMARY = {"data": {"classes": ["a", "b", "c"], "val": 300}, "stop_reason": None}
BUILT_IN = [
    "over_regularized",
    "bn_small_batch",
    "warmup_too_long",
    "symmetric_init",
    "exploding",
    "lr_too_high",
    "dead_units",
    "vanishing",
    "inputs_not_normalized",
    "files_skipped",
    "split_leakage",
    "duplicated_images",
    "test_differs",
    "label_noise",
    "eval_mismatch",
    "too_short",
    "labels_no_signal",
    "lr_too_low",
    "not_converged",
    "overfitting",
    "plateau",
    "underfitting",
    "class_imbalance",
    "classes_missed",
    "at_chance",
    "checks_flagged",
]


def _record(steps: int) -> RunRecord:
    rows = [{"kind": "iter", "step": i + 1, "loss": 0.1 + math.exp(-4 * i / steps), "lr": 0.1} for i in range(steps)]
    rows.append({"kind": "epoch", "epoch": 1, "train_acc": 0.9, "val_acc": 0.88, "val_loss": 0.3})
    return RunRecord.from_rows(rows, SUMMARY)


@pytest.fixture
def scratch_rules(monkeypatch):
    """Rules registered inside a test are gone after it."""
    monkeypatch.setattr(RULES, "_items", dict(RULES._items))
    monkeypatch.setattr(RULES, "orders", dict(RULES.orders))
    monkeypatch.setattr(RULES, "curve", set(RULES.curve))
    return RULES


def test_every_registered_rule_is_evaluated_in_the_built_in_order():
    sequence = RULES.sequence()
    assert sorted(sequence) == RULES.names()  # none left out, none twice
    assert sequence == BUILT_IN
    curve = "labels_no_signal lr_too_low not_converged overfitting plateau underfitting at_chance"
    assert CURVE_RULES == set(curve.split())


def test_a_newly_registered_rule_runs_with_no_other_edit(scratch_rules):
    seen: dict[str, list[str]] = {}

    @scratch_rules.register("test_late")
    def late(facts, found):
        seen["late"] = [f.cause for f in found]
        return Finding("test_late", "info", "late", "evidence", [])

    @scratch_rules.register("test_early", order=5.5)  # between over_regularized (5) and bn_small_batch (6)
    def early(facts, found):
        seen["early"] = [f.cause for f in found]
        return None

    sequence = scratch_rules.sequence()
    assert sequence[-1] == "test_late" and sequence[1] == "test_early"
    verdict = diagnose(_record(60))
    assert "early" in seen and "late" in seen
    assert verdict.causes == ["test_late"]


def test_a_curve_rule_is_skipped_when_the_run_is_too_short(scratch_rules):
    calls = []

    @scratch_rules.register("test_curve", curve=True)
    def reads_curves(facts, found):
        calls.append(facts.iterations)
        return None

    assert "test_curve" in scratch_rules.curve
    assert diagnose(_record(3)).causes == ["too_short"] and calls == []
    diagnose(_record(60))
    assert calls == [60]


def test_a_rule_name_registers_once(scratch_rules):
    with pytest.raises(KeyError, match="registered twice"):
        scratch_rules.register("plateau", order=1)(lambda facts, found: None)
