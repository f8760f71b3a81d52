"""The rules that read the test split: test unlike validation, noisy training labels, missed classes."""

from __future__ import annotations

import math

from convcoach.coach.diagnosis import RunRecord, diagnose

CLASSES = [f"c{i}" for i in range(10)]
EPOCHS = [(0.70, 0.72, 0.9), (0.85, 0.84, 0.5), (0.90, 0.86, 0.4)]


def _record(test_acc: float | None, per_class: dict[str, float] | None = None, val: int = 3000, test: int = 10000):
    losses = [0.3 + 2.0 * math.exp(-4 * i / 90) for i in range(90)]
    rows = [{"kind": "iter", "step": i + 1, "loss": loss, "lr": 0.1 * (1 - i / 90)} for i, loss in enumerate(losses)]
    rows += [
        {"kind": "epoch", "epoch": e, "train_acc": t, "val_acc": v, "val_loss": vl}
        for e, (t, v, vl) in enumerate(EPOCHS, start=1)
    ]
    summary = {
        "data": {"classes": CLASSES, "val": val, "test": test},
        "stop_reason": None,
        "test_accuracy": test_acc,
        "test_per_class_accuracy": per_class,
    }
    return RunRecord.from_rows(rows, summary)


def test_test_far_below_validation_is_a_test_set_that_differs():
    verdict = diagnose(_record(0.13))
    finding = next(f for f in verdict.findings if f.cause == "test_differs")
    assert not verdict.healthy and finding.severity == "warn"
    assert "test accuracy 13% against 86% on validation" in finding.evidence
    assert "label_noise" not in verdict.causes


def test_test_far_above_validation_reads_as_noisy_training_labels():
    verdict = diagnose(_record(0.97))
    assert "label_noise" in verdict.causes
    finding = next(f for f in verdict.findings if f.cause == "label_noise")
    assert "test accuracy 97% against 86% on validation" in finding.evidence
    assert any("--label-smoothing" in fix for fix in finding.fixes)


def test_a_gap_within_sampling_noise_names_nothing():
    assert {"test_differs", "label_noise"}.isdisjoint(diagnose(_record(0.85)).causes)
    # 30 validation images: a 12-point gap is within 4 standard errors
    assert {"test_differs", "label_noise"}.isdisjoint(diagnose(_record(0.74, val=30)).causes)


def test_classes_never_predicted_are_named_with_their_accuracy():
    per_class = {name: 0.95 for name in CLASSES} | {"c3": 0.02, "c7": 0.36}
    verdict = diagnose(_record(0.78, per_class))
    finding = next(f for f in verdict.findings if f.cause == "classes_missed")
    assert finding.title == "classes the model never predicts right"
    assert finding.evidence.startswith("test accuracy per class: c3 2%, c7 36%, against 78% overall")


def test_even_classes_and_runs_without_a_test_split_are_healthy():
    assert diagnose(_record(0.85, {name: 0.85 for name in CLASSES})).healthy
    assert diagnose(_record(None)).healthy  # tuning trials never read the test split
