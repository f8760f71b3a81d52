"""Diagnosis after training: each rule on hand-made curves, the verdict text, and `convcoach diagnose`."""

from __future__ import annotations

import json
import math

import pytest

from convcoach.cli import main
from convcoach.coach.diagnosis import RunRecord, diagnose, format_diagnosis

pytestmark = pytest.mark.usefixtures("single_thread")

SUMMARY = {"data": {"classes": ["a", "b", "c"], "val": 300}, "stop_reason": None}


def _record(
    losses: list[float],
    epochs: list[tuple[float, float, float]] | None = None,
    lrs: list[float] | None = None,
    updates: float | None = None,
    summary: dict | None = None,
    monitors: list[dict] | None = None,
) -> RunRecord:
    """Iteration losses, (train_acc, val_acc, val_loss) per epoch, optionally one update ratio for every sample,
    and extra monitor rows."""
    rows = [
        {"kind": "iter", "step": i + 1, "loss": loss, "lr": (lrs[i] if lrs else 0.1)} for i, loss in enumerate(losses)
    ]
    rows += monitors or []
    for index, (train_acc, val_acc, val_loss) in enumerate(epochs or [], start=1):
        rows.append({"kind": "epoch", "epoch": index, "train_acc": train_acc, "val_acc": val_acc, "val_loss": val_loss})
    if updates is not None:
        rows += [
            {
                "kind": "monitor",
                "monitor": "updates",
                "step": s,
                "layers": {"0": {"update_ratio": updates}, "1": {"update_ratio": updates}},
            }
            for s in (1, 50)
        ]
    return RunRecord.from_rows(rows, summary or SUMMARY)


def _decaying(n: int = 90, start: float = 1.1, end: float = 0.1) -> list[float]:
    return [end + (start - end) * math.exp(-4 * i / n) for i in range(n)]


HEALTHY_EPOCHS = [(0.6, 0.62, 0.8), (0.85, 0.84, 0.45), (0.95, 0.93, 0.3)]


def _activations(layers: dict[str, dict[str, float]], step: int = 1) -> dict:
    """An activations monitor row: per-layer stats after well-normalized inputs."""
    return {
        "kind": "monitor",
        "monitor": "activations",
        "step": step,
        "layers": {"input": {"mean": 0.0, "std": 1.0}, **layers},
    }


def _gradients(norms: list[float], step: int = 1) -> dict:
    return {
        "kind": "monitor",
        "monitor": "gradients",
        "step": step,
        "layers": {f"layer{i}": {"grad_norm": n} for i, n in enumerate(norms)},
    }


def _healthy_with(*monitors: dict):
    """The healthy run's curves and updates, plus the given monitor rows."""
    return diagnose(_record(_decaying(), HEALTHY_EPOCHS, updates=1e-3, monitors=list(monitors)))


def test_a_smoothly_learning_run_is_healthy():
    verdict = diagnose(_record(_decaying(), HEALTHY_EPOCHS, updates=1e-3))
    assert verdict.findings == [] and verdict.healthy


def test_overfitting_growing_gap_and_rising_validation_loss():
    epochs = [(0.7, 0.68, 0.7), (0.9, 0.8, 0.6), (0.99, 0.78, 0.75), (1.0, 0.77, 0.9)]
    verdict = diagnose(_record(_decaying(), epochs, updates=1e-3))
    assert verdict.causes == ["overfitting"]
    evidence = verdict.findings[0].evidence
    assert "training accuracy 100% vs validation 77% (gap 23 points, 21 more than at epoch 1)" in evidence
    assert "validation loss up 50% since epoch 2" in evidence


def test_plateau_at_an_undecayed_learning_rate():
    losses = _decaying(60, 1.1, 0.6)[:60] + [0.6 + 0.002 * ((-1) ** i) for i in range(60)]
    verdict = diagnose(_record(losses, [(0.9, 0.88, 0.5), (0.91, 0.9, 0.5)], updates=1e-3))
    assert verdict.causes == ["plateau"] and verdict.findings[0].severity == "info"
    assert verdict.findings[0].fixes[0].startswith("--schedule cosine")


def test_no_plateau_once_the_schedule_has_decayed():
    losses = _decaying(60, 1.1, 0.6) + [0.6] * 60
    lrs = [0.1] * 60 + [0.01] * 60
    assert "plateau" not in diagnose(_record(losses, [(0.9, 0.88, 0.5)], lrs=lrs, updates=1e-3)).causes


def test_underfitting_when_the_training_error_stays_high():
    losses = _decaying(60, 1.1, 0.9) + [0.9] * 60
    lrs = [0.1] * 60 + [0.01] * 60
    verdict = diagnose(_record(losses, [(0.5, 0.5, 0.9), (0.55, 0.54, 0.9)], lrs=lrs, updates=1e-3))
    assert verdict.causes == ["underfitting"] and "training accuracy only 55%" in verdict.findings[0].evidence


def test_flat_loss_with_tiny_updates_is_a_too_low_learning_rate():
    verdict = diagnose(_record([1.1] * 40, [(0.34, 0.33, 1.1)], updates=1e-7))
    assert verdict.causes == ["lr_too_low"] and "1.0e-07 of their norm" in verdict.findings[0].evidence


def test_a_rising_loss_with_tiny_updates_is_not_called_a_too_low_learning_rate():
    rising = [1.1 + 0.9 * i / 39 for i in range(40)]  # +82%: flat by the loss-drop test, but not "barely moving"
    assert "lr_too_low" not in diagnose(_record(rising, [(0.34, 0.33, 2.0)], updates=1e-7)).causes


def test_a_run_of_a_few_steps_is_too_short_and_skips_the_curve_rules():
    verdict = diagnose(_record([2.5, 1.1, 0.27], [(0.96, 0.95, 0.3)], updates=3e-5))
    assert verdict.causes == ["too_short"] and verdict.healthy
    assert verdict.findings[0].evidence.startswith("only 3 optimizer steps (fewer than 10)")
    assert format_diagnosis(verdict.to_dict()).splitlines()[:2] == [
        "Diagnosis: no problem found; notes:",
        "  [info] too short to read the curves: only 3 optimizer steps (fewer than 10): the curve rules (learning "
        "rate, over- and underfitting) were skipped",
    ]


def test_a_few_steps_that_leave_the_net_nearer_chance_than_a_fit_warn_even_in_one_epoch():
    # 3 steps, 9% of the training images right on 10 classes (halfway to a fit is 55%)
    verdict = diagnose(_record([2.5, 3.1, 4.27], [(0.09, 0.1, 2.4)], updates=3e-5))
    top = verdict.findings[0]
    assert (top.cause, top.severity) == ("too_short", "warn") and not verdict.healthy
    assert top.title == "too few optimizer steps to learn: 9% of the training images right"


def test_huge_updates_and_a_noisy_loss_are_a_too_high_learning_rate():
    losses = [1.1 + 0.6 * ((-1) ** i) for i in range(60)]
    verdict = diagnose(_record(losses, [(0.4, 0.4, 1.2)], updates=0.3))
    assert verdict.causes[0] == "lr_too_high" and verdict.findings[0].severity == "warn"


def test_nan_loss_is_a_diverged_run():
    verdict = diagnose(
        _record(
            [1.1, 5.0, float("nan")],
            summary={**SUMMARY, "stop_reason": "diverged", "stop_message": "loss exploded at iteration 3"},
        )
    )
    assert verdict.causes == ["lr_too_high"] and verdict.findings[0].evidence == "loss exploded at iteration 3"


def test_format_lists_findings_with_fixes():
    text = format_diagnosis(diagnose(_record([1.1] * 40, [(0.34, 0.33, 1.1)], updates=1e-7)).to_dict())
    assert text.splitlines()[0] == "Diagnosis: lr too low"
    assert text.splitlines()[1].startswith(
        "  [warn] learning rate too low: the loss barely moves: loss 1.1 -> 1.1 over 40 iterations"
    )
    assert "try: --lr 10x the current (10x; convcoach check sweeps the range); --lr auto" in text


def test_train_prints_the_diagnosis_and_diagnose_rereads_it(blobs_npz, tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main(
        [
            "train",
            "--data",
            f"npz:{blobs_npz}",
            "--model",
            "cnn",
            "--depth",
            "2",
            "--width",
            "8",
            "--epochs",
            "4",
            "--batch-size",
            "32",
            "--quiet",
            "--val-fraction",
            "0.1",
            "--augment",
            "none",
            "--lr",
            "1e-6",
            "--optimizer",
            "sgd",
            "--schedule",
            "constant",
            "--no-report",
            "--monitor-every",
            "4",
            "--out",
            str(run_dir),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "Diagnosis: lr too low" in printed
    stored = json.loads((run_dir / "summary.json").read_text())["diagnosis"]
    assert main(["diagnose", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["causes"] == stored["causes"] == ["lr_too_low"]
    assert main(["diagnose", str(run_dir)]) == 0
    assert capsys.readouterr().out.startswith("Diagnosis: lr too low")


def test_diagnose_needs_a_run_directory(tmp_path, capsys):
    assert main(["diagnose", str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"convcoach: error: {tmp_path}: no metrics.jsonl (expected a training run directory)"
    )


@pytest.mark.parametrize("bad", ["not json", '{"kind": "iter", "loss": 1'])
def test_a_corrupt_metrics_line_names_the_file_and_line(tmp_path, capsys, bad):
    (tmp_path / "metrics.jsonl").write_text('{"kind": "iter", "step": 1, "loss": 1.0, "lr": 0.1}\n' + bad + "\n")
    assert main(["diagnose", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"convcoach: error: {tmp_path / 'metrics.jsonl'}:2: not a JSON line"


def test_a_run_no_better_than_guessing_is_not_called_healthy():
    # as an audit found it: 12 steps, the loss down 18%, tiny updates, validation accuracy below chance
    losses = [2.4 - 0.04 * i for i in range(12)]
    verdict = diagnose(_record(losses, [(0.127, 0.057, 2.3)], updates=4e-5))
    assert verdict.causes == ["at_chance"] and not verdict.healthy
    assert verdict.findings[0].title == "not learning at all: validation accuracy is at chance"
    assert verdict.findings[0].evidence.startswith(
        "best validation accuracy 6% for 3 classes (chance 33%) after 12 iterations"
    )


def test_train_vs_eval_mode_probe_is_skipped_under_ddp_with_sync_batchnorm():
    # its train-mode forward runs on rank 0 only: SyncBatchNorm would wait for ranks that never join
    import torch

    from convcoach.coach.diagnosis import accuracy_by_mode
    from convcoach.train.distributed import DistContext

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.SyncBatchNorm(2))
    split = type("S", (), {"images": torch.zeros(4, 1, 5, 5, dtype=torch.uint8), "__len__": lambda self: 4})()
    trainer = type("T", (), {"model": model, "dist": DistContext(0, 2), "data": type("D", (), {"train": split})()})()
    assert accuracy_by_mode(trainer) is None


def test_healthy_monitors_add_no_finding():
    verdict = _healthy_with(
        _activations(
            {
                "a1": {"mean": 0.3, "std": 0.6, "dead": 0.1, "saturated": 0.2},
                "a2": {"mean": 0.3, "std": 0.58, "dead": 0.2},
                "a3": {"mean": 0.3, "std": 0.55, "dead": 0.1},
            }
        ),
        _gradients([0.5, 1.0]),
    )
    assert (
        verdict.findings == []
        and verdict.facts.act_shrink == pytest.approx(0.55 / 0.6)
        and verdict.facts.grad_ratio == 0.5
    )


@pytest.mark.parametrize(("saturated", "found"), [(0.8, True), (0.5, True), (0.49, False)])
def test_saturated_tanh_outputs_are_exploding_activations(saturated, found):
    verdict = _healthy_with(_activations({"tanh1": {"mean": 0.0, "std": 0.9, "saturated": saturated}}))
    if not found:
        assert verdict.findings == []
        return
    assert verdict.causes == ["exploding"] and not verdict.healthy
    finding = verdict.findings[0]
    assert finding.severity == "warn"
    assert finding.title == "exploding or saturated activations: the init's weights are too large"
    assert finding.evidence == f"{saturated:.0%} of a tanh/sigmoid layer's outputs are saturated: init std too large"
    assert finding.fixes[0] == "--init xavier"


def test_saturation_is_read_from_the_last_activations_sample():
    early = _activations({"tanh1": {"mean": 0.0, "std": 0.9, "saturated": 0.9}}, step=1)
    late = _activations({"tanh1": {"mean": 0.0, "std": 0.6, "saturated": 0.1}}, step=50)
    assert _healthy_with(early, late).findings == []


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_non_finite_gradient_norms_are_exploding(bad):
    verdict = _healthy_with(_gradients([1.0, 2.0], step=1), _gradients([bad, 2.0], step=50))
    assert verdict.causes == ["exploding"] and verdict.findings[0].evidence == "gradient norms became NaN/inf"
    assert verdict.facts.grad_ratio == 0.5  # the finite sample alone


@pytest.mark.parametrize(("last_std", "found"), [(6.0, True), (5.0, False)])
def test_activations_growing_more_than_10x_over_the_layers_are_exploding(last_std, found):
    # the first sample's live layers: std 0.5 -> 2 -> last_std; above 10x growth (6 / 0.5 = 12) is exploding, 10x is not
    layers = {"a1": {"mean": 0.0, "std": 0.5}, "a2": {"mean": 0.0, "std": 2.0}, "a3": {"mean": 0.0, "std": last_std}}
    verdict = _healthy_with(_activations(layers))
    assert verdict.facts.act_shrink == pytest.approx(last_std / 0.5)
    if found:
        assert verdict.causes == ["exploding"]
        assert verdict.findings[0].evidence == "activations grow layer by layer at init (std 0.5 -> 6)"
    else:
        assert verdict.findings == []


def test_exploding_lists_every_piece_of_evidence():
    layers = {
        "a1": {"mean": 0.0, "std": 0.5},
        "a2": {"mean": 0.0, "std": 2.0},
        "a3": {"mean": 0.0, "std": 8.0, "saturated": 0.75},
    }
    verdict = _healthy_with(_activations(layers), _gradients([float("inf"), 1.0]))
    assert verdict.causes == ["exploding"]
    assert verdict.findings[0].evidence == (
        "75% of a tanh/sigmoid layer's outputs are saturated: init std too large; activations grow layer by layer "
        "at init (std 0.5 -> 8); gradient norms became NaN/inf"
    )


def test_a_diverged_run_with_saturated_activations_blames_the_init_not_the_learning_rate():
    verdict = diagnose(
        _record(
            [1.1, 5.0, float("nan")],
            summary={**SUMMARY, "stop_reason": "diverged"},
            monitors=[_activations({"tanh1": {"mean": 0.0, "std": 0.9, "saturated": 0.9}})],
        )
    )
    assert verdict.causes == ["exploding"]
    assert verdict.findings[0].severity == "fail" and verdict.findings[0].fixes[0] == "--init xavier"


def test_a_diverged_run_with_healthy_activations_blames_the_learning_rate():
    verdict = diagnose(
        _record(
            [1.1, 5.0, float("nan")],
            summary={**SUMMARY, "stop_reason": "diverged", "lr": 0.5},
            monitors=[_activations({"relu1": {"mean": 0.3, "std": 0.6, "dead": 0.0}})],
        )
    )
    assert verdict.causes == ["lr_too_high"]
    assert verdict.findings[0].fixes[0].startswith("--lr 0.05 (a tenth")


@pytest.mark.parametrize(("ratio", "found"), [(1e-4, True), (9.9e-4, True), (1e-3, False)])
def test_a_first_layer_gradient_below_1e3_of_the_last_is_vanishing(ratio, found):
    verdict = _healthy_with(_gradients([ratio, 1.0]))
    assert verdict.facts.grad_ratio == pytest.approx(ratio)
    if not found:
        assert verdict.findings == []
        return
    assert verdict.causes == ["vanishing"]
    finding = verdict.findings[0]
    assert finding.severity == "warn"  # the loss still falls
    assert finding.evidence == f"the first layer's gradient is {ratio:.1e} of the last layer's"


def test_vanishing_gradients_with_a_flat_loss_fail_and_hide_the_too_low_learning_rate():
    verdict = diagnose(_record([1.1] * 40, [(0.34, 0.33, 1.1)], updates=1e-7, monitors=[_gradients([1e-5, 1.0])]))
    assert verdict.causes == ["vanishing"] and verdict.findings[0].severity == "fail"
    assert verdict.findings[0].evidence == "the first layer's gradient is 1.0e-05 of the last layer's"


def test_vanishing_gradient_ratio_is_the_median_over_samples():
    verdict = _healthy_with(
        _gradients([1e-4, 1.0], step=1), _gradients([0.5, 1.0], step=2), _gradients([0.2, 1.0], step=3)
    )
    assert verdict.facts.grad_ratio == 0.2 and verdict.findings == []


def test_activations_shrinking_below_a_fifth_are_vanishing():
    layers = {"a1": {"mean": 0.0, "std": 0.5}, "a2": {"mean": 0.0, "std": 0.2}, "a3": {"mean": 0.0, "std": 0.05}}
    verdict = _healthy_with(_activations(layers))
    assert verdict.causes == ["vanishing"]
    assert (
        verdict.findings[0].evidence
        == "activations shrink layer by layer at init (std 0.5 -> 0.05): init std too small"
    )


@pytest.mark.parametrize(
    ("dead", "severity"), [(0.49, None), (0.5, "warn"), (0.7, "warn"), (0.89, "warn"), (0.9, "fail"), (1.0, "fail")]
)
def test_dead_relus_warn_from_half_and_fail_from_90_percent(dead, severity):
    layers = {"relu1": {"mean": 0.2, "std": 0.5, "dead": 0.1}, "relu2": {"mean": 0.1, "std": 0.3, "dead": dead}}
    short_of_fitting = [(0.6, 0.62, 0.8), (0.8, 0.8, 0.5), (0.85, 0.84, 0.45)]
    verdict = diagnose(_record(_decaying(), short_of_fitting, updates=1e-3, monitors=[_activations(layers)]))
    if severity is None:
        assert verdict.findings == []
        return
    assert verdict.causes == ["dead_units"] and verdict.findings[0].severity == severity
    # in a net that fits 95% of its training images anyway, the same dead units are a note
    assert [(f.cause, f.severity) for f in _healthy_with(_activations(layers)).findings] == [("dead_units", "info")]
    assert verdict.findings[0].evidence == (
        f"{dead:.0%} of the units of activation layer 2 of 2 ('relu2') output zero for a whole batch: "
        "they pass no gradient"
    )


def test_dead_units_take_precedence_over_vanishing():
    verdict = _healthy_with(_activations({"relu1": {"mean": 0.0, "std": 0.5, "dead": 0.7}}), _gradients([1e-5, 1.0]))
    assert verdict.causes == ["dead_units"]
