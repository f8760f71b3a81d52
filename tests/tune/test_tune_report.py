"""The reports: the notes' table lines, trials.csv, edge warnings and scatter plots."""

from __future__ import annotations

import csv

from convcoach.tune.space import parse_space
from convcoach.tune.tune_report import (
    TrialRecord,
    at_chance_line,
    edge_warnings,
    format_line,
    scatter_plots,
    trials_table,
    write_csv,
)

SPACE = parse_space("lr=1e-6..1e-2:log, weight_decay=1e-4..1:log, dropout=0..0.5, optimizer=[sgd,adam]")


def record(number: int, val_acc: float | None, outcome: str = "completed", **params) -> TrialRecord:
    values = {"lr": 5.340517e-04, "weight_decay": 4.097824e-01, "dropout": 0.25, "optimizer": "adam"} | params
    return TrialRecord(
        stage=1,
        number=number,
        outcome=outcome,
        val_acc=val_acc,
        params=values,
        epochs=5,
        epochs_run=5,
        steps=10,
        planned_steps=10,
    )


def test_table_line_reads_like_the_notes():
    line = format_line(record(2, 0.527), SPACE, total=100)
    assert line == "val_acc: 0.527, lr: 5.34e-04, weight_decay: 4.10e-01, dropout: 0.25, optimizer: adam (3 / 100)"


def test_table_sorts_by_accuracy_and_marks_early_stops():
    records = [record(0, 0.41), record(1, None, "diverged", lr=3e-3), record(2, 0.53), record(3, 0.2, "pruned")]
    records[3].epochs_run = 1
    records[1].steps = 2
    lines = trials_table(records, SPACE, total=4).splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "val_acc: 0.530",
        "val_acc: 0.410",
        "val_acc: 0.200",
        "val_acc: -----",
    ]
    assert lines[2].endswith("(4 / 4)  [pruned after epoch 1/5]")
    assert lines[3].endswith("(2 / 4)  [diverged at step 2: stopped early]")


def test_edge_warning_when_best_sits_at_the_edge():
    low_lr = edge_warnings(SPACE, {"lr": 2e-6, "weight_decay": 1e-2, "dropout": 0.25, "optimizer": "sgd"})
    assert low_lr == [
        "the best lr (2.00e-06) sits at the low edge of its range 1.00e-06..1.00e-02: "
        "this best cross-validation result is worrying, "
        "the optimum may lie beyond it; widen the range on the low side and search again"
    ]
    assert edge_warnings(SPACE, {"lr": 1e-4, "weight_decay": 1e-2, "dropout": 0.49}) == [
        "the best dropout (0.49) sits at the high edge of its range 0..0.5: "
        "this best cross-validation result is worrying, "
        "the optimum may lie beyond it; widen the range on the high side and search again"
    ]
    widths = parse_space("width=[16,32,64]")
    assert "high edge" in edge_warnings(widths, {"width": 64})[0]
    assert edge_warnings(widths, {"width": 32}) == []


def test_csv_and_scatter_plots(tmp_path):
    records = [
        record(0, 0.41, lr=1e-5),
        record(1, None, "diverged", lr=8e-3),
        record(2, 0.53, lr=3e-4, optimizer="sgd"),
    ]
    write_csv(records, tmp_path / "trials.csv")
    rows = list(csv.DictReader(open(tmp_path / "trials.csv")))
    assert [r["trial"] for r in rows] == ["0", "1", "2"]
    assert rows[1]["outcome"] == "diverged" and rows[1]["val_acc"] == ""
    assert float(rows[2]["lr"]) == 3e-4
    paths = scatter_plots(records, SPACE, tmp_path / "plots")
    assert sorted(p.name for p in paths) == [
        "val_acc_vs_dropout.png",
        "val_acc_vs_lr.png",
        "val_acc_vs_optimizer.png",
        "val_acc_vs_weight_decay.png",
    ]
    assert all(p.stat().st_size > 5000 for p in paths)


def _ended(number: int, val_acc: float | None, first: float | None, last: float | None, **fields) -> TrialRecord:
    fields.setdefault("outcome", "completed")
    return TrialRecord(
        stage=1,
        number=number,
        val_acc=val_acc,
        params={"lr": fields.pop("lr", 0.1)},
        first_loss=first,
        last_loss=last,
        **fields,
    )


def test_a_study_whose_trials_all_end_at_chance_says_so_and_why():
    flat = [_ended(n, 0.1, 2.303, 2.301) for n in range(4)]  # 10.0% of 10000 images: 2 standard errors are 0.6%
    assert at_chance_line(flat, classes=10, val_images=10000) == (
        "all 4 trials ended at chance (10.0% for 10 classes): no trial learned; every trial's training loss stayed "
        "flat (within 5% of its start): the search space's learning rates are likely all too low, or the model "
        "learns at none (check its init and inputs) - run convcoach check on one trial's options"
    )
    diverged = [_ended(n, None, 2.3, None, outcome="diverged") for n in range(3)]
    assert "every trial's training loss diverged: the search space's learning rates are likely all too high" in (
        at_chance_line(diverged, classes=10, val_images=10000) or ""
    )
    both = [_ended(0, None, 2.3, None, outcome="diverged", lr=1.0), _ended(1, 0.1, 2.3, 2.3, lr=1e-6)]
    assert (
        "the training loss diverged or rose in 1 and stayed flat in 1 (lr >= 1.00e+00 diverged or rose, "
        "lr <= 1.00e-06 stayed flat): the learning rates are likely all too high or too low"
    ) in (at_chance_line(both, classes=10, val_images=10000) or "")


def test_no_at_chance_line_once_one_trial_beats_chance_by_two_standard_errors():
    # 10 classes on 1000 validation images: chance 10%, two standard errors 1.9 points
    assert at_chance_line([_ended(0, 0.118, 2.3, 2.3), _ended(1, 0.1, 2.3, 2.3)], 10, 1000) is not None
    assert at_chance_line([_ended(0, 0.12, 2.3, 2.3), _ended(1, 0.1, 2.3, 2.3)], 10, 1000) is None
    # a model that always answers a 30% majority class is at chance too
    line = at_chance_line([_ended(0, 0.3, 2.3, 2.3)], 10, 1000, majority=0.3)
    assert line is not None and "(10.0% for 10 classes, 30.0% by always answering the majority class)" in line
    assert at_chance_line([_ended(0, None, None, None, outcome="failed")], 10, 1000) is None
