"""The coach's second-version rules on hand-made runs: causes read from the run's options and data,
fixes ranked and never already in effect, at most three (coach/option_rules.py, data_rules.py, advice.py)."""

from __future__ import annotations

import math

from convcoach.coach.advice import advise, in_effect, strong_regularizers, weight_skew
from convcoach.coach.diagnosis import RunRecord, diagnose

CLASSES = [f"c{i}" for i in range(10)]


def _run(
    options: dict | None = None,
    losses: list[float] | None = None,
    epochs: list[tuple[float, float, float]] | None = None,
    summary: dict | None = None,
    monitors: list[dict] | None = None,
    lrs: list[float] | None = None,
):
    losses = losses or [2.3 - 1.5 * (1 - math.exp(-4 * i / 90)) for i in range(90)]
    rows = [{"kind": "iter", "step": i + 1, "loss": v, "lr": (lrs[i] if lrs else 0.1)} for i, v in enumerate(losses)]
    for index, (train_acc, val_acc, val_loss) in enumerate(epochs or [], start=1):
        rows.append({"kind": "epoch", "epoch": index, "train_acc": train_acc, "val_acc": val_acc, "val_loss": val_loss})
    rows += monitors or []
    base = {"data": {"classes": CLASSES, "val": 3000, "train": 2000, "test": 10000}, "lr": 0.1, "stop_reason": None}
    for key, value in (summary or {}).items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and key in base else value
    return diagnose(RunRecord.from_rows(rows, base, {"epochs": 3, "schedule": "onecycle", **(options or {})}))


LOW_FIT = [(0.2, 0.2, 2.1), (0.25, 0.24, 2.0), (0.27, 0.26, 2.0)]


def test_weight_decay_far_past_its_usual_value_is_named_with_its_multiple():
    verdict = _run(
        {"weight_decay": 0.5, "optimizer": "nesterov"},
        epochs=LOW_FIT,
        summary={"train_accuracy_by_mode": {"train": 0.27, "eval": 0.27}},
    )
    top = verdict.findings[0]
    assert top.cause == "over_regularized"
    assert top.title == "over-regularized: --weight-decay 0.5 is 1000x the usual 0.0005"
    assert top.fixes[0].startswith("--weight-decay 0.0005 (the usual value; if training accuracy then rises")
    assert "27% of its own training images" in top.evidence


def test_usual_regularization_that_fits_its_training_set_is_not_blamed():
    assert strong_regularizers({"weight_decay": 5e-4, "optimizer": "sgd", "dropout": 0.5, "mixup": 0.2}) == []
    verdict = _run(
        {"weight_decay": 0.5},
        epochs=[(0.9, 0.6, 1.0), (0.97, 0.62, 1.1), (0.99, 0.63, 1.2)],
        summary={"train_accuracy_by_mode": {"train": 0.99, "eval": 0.99}},
    )
    assert "over_regularized" not in verdict.causes


def test_the_strongest_of_several_regularizers_comes_first():
    strong = strong_regularizers({"reg": "l2:1", "dropout": 0.9, "weight_decay": 0.0, "optimizer": "adam"})
    assert [s.flag for s in strong] == ["--reg", "--dropout"] and strong[0].times == 10000
    assert strong[0].fix == "--reg l2:0.0001"


def test_a_fix_already_in_effect_is_dropped_and_at_most_three_are_kept():
    options = {"norm": "batch", "model": "resnet", "augment": ["hflip", "translate:2"], "lr": 0.1}
    assert in_effect("--norm batch", options) == "--norm batch"
    assert in_effect("--augment hflip,translate:2 (more variety)", options) == "--augment hflip,translate:2"
    assert in_effect("--augment hflip", options) is None  # a different list
    fixes = ["--norm batch", "--model resnet (skip links)", "--width 64", "--epochs 6", "--lr 0.2", "--dropout 0.3"]
    assert advise(fixes, options) == ["--width 64", "--epochs 6", "--lr 0.2"]


def test_underfitting_on_the_default_resnet_never_suggests_skip_links_or_batchnorm():
    losses = [2.3 - 0.8 * (1 - math.exp(-8 * i / 90)) for i in range(90)]
    verdict = _run({"model": "resnet", "norm": "batch", "width": 4}, losses=losses, epochs=LOW_FIT)
    top = verdict.findings[0]
    assert top.cause == "underfitting"
    assert top.fixes == ["--width 8", "--epochs 6"]


def test_batchnorm_at_batch_2_is_named_with_its_statistics():
    verdict = _run(
        {"batch_size": 2, "norm": "batch"},
        epochs=LOW_FIT,
        summary={"model_facts": {"batchnorm_layers": 15}, "train_accuracy_by_mode": {"train": 0.7, "eval": 0.2}},
    )
    top = verdict.findings[0]
    assert top.cause == "bn_small_batch" and top.title == "batch too small for BatchNorm: 2 images per batch"
    assert "scores 70% with batch statistics and 20% with its running statistics" in top.evidence
    assert top.fixes[0].startswith("--norm group:8")
    assert "eval_mismatch" not in verdict.causes


def test_a_warmup_longer_than_the_run_is_found_from_the_lr_it_reached():
    lrs = [0.8 * (i + 1) / 10000 for i in range(90)]
    verdict = _run({"warmup": 10000}, lrs=lrs, summary={"lr": 0.8})
    top = verdict.findings[0]
    assert top.cause == "warmup_too_long" and "reached only 1% of its peak 0.8" in top.evidence
    assert top.fixes[0] == "--warmup 9 (a tenth of the run)"


def test_identical_weight_rows_are_a_symmetric_init():
    rows = [
        {
            "kind": "monitor",
            "monitor": "updates",
            "step": s,
            "layers": {"0": {"update_ratio": 1e-3, "alike": 0.0}, "1": {"update_ratio": 1e-3, "alike": 0.9}},
        }
        for s in (1, 50)
    ]
    verdict = _run({"init": "constant:0.01"}, monitors=rows, epochs=LOW_FIT)
    assert verdict.causes[0] == "symmetric_init" and verdict.findings[0].severity == "fail"
    assert "(--init constant:0.01)" in verdict.findings[0].evidence
    assert verdict.findings[0].fixes[0].startswith("--init auto")


def _dying(*points: tuple[int, float]) -> list[dict]:
    """Activations monitor rows: the share of layer fc's units that output zero, at each (step, share)."""
    return [
        {
            "kind": "monitor",
            "monitor": "activations",
            "step": step,
            "layers": {"input": {"mean": 0.0, "std": 1.0}, "fc": {"mean": 0.1, "std": 0.5, "dead": dead}},
        }
        for step, dead in points
    ]


def test_relus_that_die_during_training_blame_the_learning_rate_not_the_init():
    flat = [2.3] * 90
    died = _run({}, losses=flat, epochs=LOW_FIT, monitors=_dying((1, 0.1), (50, 1.0)))
    assert died.causes[0] == "lr_too_high" and "died during training (10% at iteration 1)" in died.findings[0].evidence
    born_dead = _run({}, losses=flat, epochs=LOW_FIT, monitors=_dying((1, 1.0), (50, 1.0)))
    assert born_dead.causes[0] == "dead_units"


def test_test_images_copied_from_training_are_leakage_not_label_noise():
    verdict = _run(
        {},
        epochs=[(0.9, 0.7, 0.9), (0.95, 0.75, 0.8), (0.97, 0.78, 0.8)],
        summary={"data": {"test_in_train": 1000, "test": 1000}, "test_accuracy": 0.97},
    )
    assert verdict.causes[0] == "split_leakage"
    assert "1000 of 1000 test images (100.0%) are byte-identical" in verdict.findings[0].evidence
    assert "label_noise" not in verdict.causes


def test_repeated_training_images_are_counted():
    verdict = _run(
        {}, epochs=[(0.9, 0.9, 0.4)] * 3, summary={"data": {"repeated_in_train": 1800, "val_in_train": 500, "val": 500}}
    )
    top = verdict.findings[0]
    assert top.cause == "duplicated_images" and top.title.endswith("200 distinct images among 2000")
    assert "500 of 500 validation images are copies too" in top.evidence


def test_a_rare_class_is_named_with_its_count_and_test_accuracy():
    counts = [300] * 10
    counts[6] = 6
    per_class = {name: 0.85 for name in CLASSES}
    per_class["c6"] = 0.05
    verdict = _run(
        {},
        epochs=[(0.9, 0.85, 0.4)] * 3,
        summary={"data": {"train_class_counts": counts}, "test_per_class_accuracy": per_class, "test_accuracy": 0.8},
    )
    top = [f for f in verdict.findings if f.severity == "warn"][0]
    assert top.cause == "class_imbalance" and "c6 6 (5% right on test)" in top.evidence
    assert "classes_missed" not in verdict.causes


def test_unreadable_files_are_reported():
    verdict = _run({}, epochs=[(0.9, 0.85, 0.4)] * 3, summary={"data": {"skipped_files": 180, "train": 420}})
    assert verdict.findings[0].cause == "files_skipped" and "180 of 600 files (30.0%)" in verdict.findings[0].evidence


def test_still_improving_at_a_held_lr_is_not_converged_with_an_estimate():
    losses = [2.3 - 1.2 * i / 90 for i in range(90)]  # still falling steadily
    verdict = _run(
        {"epochs": 3, "schedule": "constant"},
        losses=losses,
        epochs=[(0.5, 0.52, 1.4), (0.6, 0.62, 1.2), (0.7, 0.73, 1.0)],
    )
    top = verdict.findings[0]
    assert top.cause == "not_converged" and top.severity == "warn"
    assert "rose 11.0 points in the last epoch, to 73%; from the curve, about 11 more points" in top.evidence
    assert top.fixes[0] == "--epochs 6 (twice as long)"


def test_a_flattened_loss_at_a_constant_lr_is_a_plateau_with_a_schedule_fix():
    losses = [0.6 + 1.7 * math.exp(-12 * i / 90) for i in range(90)]
    verdict = _run(
        {"schedule": "constant"}, losses=losses, epochs=[(0.8, 0.8, 0.6), (0.84, 0.82, 0.6), (0.85, 0.82, 0.6)]
    )
    top = verdict.findings[0]
    assert top.cause == "plateau" and top.severity == "warn" and top.fixes[0].startswith("--schedule cosine")


def test_at_chance_on_its_own_training_images_is_not_learning_not_label_trouble():
    flat = [2.3] * 90
    chance = [(0.1, 0.1, 2.3)] * 3
    verdict = _run(
        {},
        losses=flat,
        epochs=chance,
        summary={"train_accuracy_by_mode": {"train": 0.1, "eval": 0.1}},
        monitors=[{"kind": "monitor", "monitor": "updates", "step": 50, "layers": {"0": {"update_ratio": 1e-3}}}],
    )
    assert "labels_no_signal" not in verdict.causes
    memorizing = _run(
        {}, losses=flat, epochs=[(0.6, 0.1, 2.3)] * 3, summary={"train_accuracy_by_mode": {"train": 0.6, "eval": 0.6}}
    )
    assert memorizing.causes[0] == "labels_no_signal"


def test_every_finding_has_one_cause_one_evidence_and_at_most_three_fixes():
    cases = [
        _run({"weight_decay": 0.5}, epochs=LOW_FIT, summary={"train_accuracy_by_mode": {"train": 0.27, "eval": 0.27}}),
        _run({"batch_size": 2, "norm": "batch"}, epochs=LOW_FIT),
        _run({}, epochs=[(0.9, 0.7, 0.9)] * 3, summary={"data": {"test_in_train": 500}}),
    ]
    for verdict in cases:
        for finding in verdict.findings:
            assert len(finding.fixes) <= 3 and finding.title and finding.evidence


def test_check_results_in_the_run_directory_are_read(tmp_path):
    import json

    from convcoach.coach import diagnose_run

    (tmp_path / "metrics.jsonl").write_text(
        "\n".join(json.dumps({"kind": "iter", "step": i + 1, "loss": 2.3 - i / 100, "lr": 0.1}) for i in range(30))
    )
    (tmp_path / "summary.json").write_text(json.dumps({"data": {"classes": CLASSES, "val": 0}}))
    (tmp_path / "check.json").write_text(
        json.dumps(
            {
                "results": [
                    {
                        "name": "data_labels",
                        "status": "warn",
                        "message": "labels look unrelated",
                        "fix": "check the labels",
                    },
                    {"name": "initial_loss", "status": "pass", "message": "fine", "fix": ""},
                ]
            }
        )
    )
    finding = diagnose_run(tmp_path).findings[-1]
    assert finding.cause == "checks_flagged" and finding.evidence == "data_labels (warn): labels look unrelated"
    assert finding.fixes == ["check the labels"]


def test_steps_that_overshoot_are_evidence_of_a_too_high_lr():
    rows = [
        {"kind": "monitor", "monitor": "step_size", "step": s, "layers": {"model": {"alpha": a}}}
        for s, a in ((1, 0.1), (20, 1.6), (40, 2.0), (60, 1.8))
    ]
    verdict = _run({}, losses=[2.3 + 0.05 * (i % 3) for i in range(90)], epochs=LOW_FIT, monitors=rows)
    assert verdict.facts.alpha == 1.8 and verdict.facts.uphill == 1.0
    assert verdict.causes[0] == "lr_too_high" and "steps overshoot" in verdict.findings[0].evidence


def test_every_regularizer_option_has_a_usual_strength():
    usual = {"dropconnect": 0.5, "stochastic_depth": 0.1, "input_noise": 0.1, "cutout": 14, "max_norm": 3.0}
    assert strong_regularizers(usual) == []
    strong = strong_regularizers(
        {"dropconnect": 0.9, "stochastic_depth": 0.9, "input_noise": 3.0, "cutout": 24, "max_norm": 0.01}
    )
    assert [str(s) for s in strong] == [
        "--max-norm 0.01 is 300x smaller than the usual 3",
        "--input-noise 3 is 30x the usual 0.1",
        "--stochastic-depth 0.9 is 4x the usual 0.2",
        "--dropconnect 0.9 is 2x the usual 0.5",
        "--cutout 24 is 2x the usual 14",
    ]
    assert strong[0].fix == "--max-norm 3"
    # cutout's usual square is half the images' side: 24 px is far past it at 28 px, not at 64
    assert strong_regularizers({"cutout": 24}, side=64) == []


def test_input_noise_that_holds_the_net_back_is_over_regularization_not_unnormalized_inputs():
    noisy = {"kind": "monitor", "monitor": "activations", "step": 5, "layers": {"input": {"mean": 0.02, "std": 3.17}}}
    verdict = _run(
        {"input_noise": 3.0},
        epochs=[(0.5, 0.55, 1.4), (0.6, 0.62, 1.2), (0.66, 0.66, 1.1)],
        summary={"train_accuracy_by_mode": {"train": 0.72, "eval": 0.66}},
        monitors=[noisy],
    )
    assert verdict.findings[0].cause == "over_regularized"
    assert verdict.findings[0].title == "over-regularized: --input-noise 3 is 30x the usual 0.1"
    # std 3.17 is sqrt(1 + 3^2): the noise, not the normalization
    assert "inputs_not_normalized" not in verdict.causes


def _clip_rows(norm: float, max_norm: float) -> list[dict]:
    layers = {"conv": {"grad_norm": max_norm}}
    return [
        {
            "kind": "monitor",
            "monitor": "gradients",
            "step": s,
            "layers": layers,
            "clip_grad": {"norm": norm, "max_norm": max_norm},
        }
        for s in (5, 10, 15)
    ]


def test_clipping_far_below_the_gradient_norm_is_a_too_small_step_with_its_own_fix():
    flat = [2.4 - 0.05 * i / 90 for i in range(90)]
    verdict = _run(
        {"clip_grad": 1e-4, "optimizer": "nesterov"},
        losses=flat,
        epochs=[(0.1, 0.1, 2.4), (0.1, 0.1, 2.4), (0.1, 0.1, 2.4)],
        monitors=_clip_rows(0.35, 1e-4),
    )
    top = verdict.findings[0]
    assert (top.cause, top.title) == ("lr_too_low", "steps too small: gradient clipping scales every step down")
    assert top.evidence.startswith("--clip-grad 0.0001 against a median gradient norm of 0.35: each step is 3500x")
    assert top.fixes[:2] == [
        "--clip-grad 1 (above the usual norm: clipping then only catches spikes)",
        "no --clip-grad",
    ]
    # clipping only the spikes (norm about the cap) is not a fault
    assert _run({"clip_grad": 1.0}, losses=flat, monitors=_clip_rows(0.9, 1.0)).findings[0].title != top.title


def test_a_schedule_that_ends_the_lr_in_its_first_quarter_is_named():
    lrs = [0.8 * 0.001 ** (i / 30) for i in range(90)]  # exp:0.001 at 30 iterations an epoch
    losses = [2.4 - 1.4 * min(i, 20) / 20 for i in range(90)]
    fit = {"train_accuracy_by_mode": {"train": 0.85, "eval": 0.84}}
    verdict = _run(
        {"schedule": "exp:0.001"},
        losses=losses,
        lrs=lrs,
        epochs=[(0.7, 0.7, 0.9), (0.8, 0.8, 0.7), (0.84, 0.82, 0.6)],
        summary=fit,
    )
    top = verdict.findings[0]
    assert top.cause == "lr_too_low"
    assert top.evidence.startswith("the LR fell under 1% of its peak 23% into the run (--schedule exp:0.001)")
    assert top.fixes[0] == "--schedule onecycle (anneals to ~0 only at the end)"
    # one-cycle reaches ~0 only at its end
    onecycle = [0.8 * math.sin(math.pi * min(i / 89, 1)) ** 2 for i in range(90)]
    assert "lr_too_low" not in _run({}, losses=losses, lrs=onecycle, summary=fit).causes


def test_momentum_far_past_0_9_is_a_too_large_step():
    verdict = _run(
        {"optimizer": "momentum", "momentum": 0.999, "lr": 0.1},
        epochs=[(0.5, 0.5, 1.5), (0.62, 0.62, 1.3), (0.7, 0.71, 1.2)],
    )
    top = verdict.findings[0]
    assert top.cause == "lr_too_high"
    assert "--momentum 0.999 carries each gradient into ~1000 steps (1 / (1 - momentum)), 100x the usual 0.9's 10" in (
        top.evidence
    )
    assert top.fixes[0] == "--momentum 0.9 (its usual value; the step then matches the LR again)"
    # the EMA convention does not multiply the step: it averages the gradients over that window instead
    ema = {"optimizer": "momentum", "momentum": 0.999, "momentum_convention": "ema"}
    top = _run(ema, epochs=[(0.5, 0.5, 1.5), (0.62, 0.62, 1.3), (0.7, 0.71, 1.2)]).findings[0]
    assert "carries each gradient" not in top.evidence and "the mean of the last ~1000 gradients" in top.evidence


def test_adam_with_beta1_far_past_0_9_follows_a_stale_mean_of_the_gradients():
    poor = [(0.5, 0.5, 1.5), (0.66, 0.65, 1.2), (0.72, 0.72, 1.1)]
    steps = [
        {"kind": "monitor", "monitor": "step_size", "step": s, "layers": {"model": {"alpha": a}}}
        for s, a in ((10, 1.4), (20, -0.9), (30, -0.8))  # one step in three uphill; the median stops short
    ]
    adam = {"optimizer": "adam", "momentum": 0.999, "lr": 1e-3}
    verdict = _run(adam, epochs=poor, monitors=steps, summary={"lr": 1e-3})
    top = verdict.findings[0]
    assert (top.cause, top.severity) == ("lr_too_high", "warn")
    assert (
        "--momentum 0.999 makes each step the mean of the last ~1000 gradients (1 / (1 - momentum)), 100x the "
        "usual 0.9's: the steps run on where the gradient has turned; 33% of the measured steps went uphill"
    ) in top.evidence
    assert top.fixes[0] == "--momentum 0.9 (its usual value; the step then follows the gradient again)"
    usual = _run({**adam, "momentum": 0.95}, epochs=poor, monitors=steps, summary={"lr": 1e-3})
    assert "lr_too_high" not in usual.causes


def test_units_that_die_in_a_net_that_fits_its_training_images_are_only_a_note():
    fits = [(0.9, 0.9, 0.3), (0.97, 0.96, 0.1), (0.99, 0.985, 0.06)]
    verdict = _run(
        {},
        epochs=fits,
        monitors=_dying((1, 0.0), (50, 0.5)),
        summary={"train_accuracy_by_mode": {"train": 0.998, "eval": 0.998}},
    )
    assert "lr_too_high" not in verdict.causes and verdict.healthy
    note = next(f for f in verdict.findings if f.cause == "dead_units")
    assert note.severity == "info" and note.evidence.startswith("50% of the units of")


def test_images_shrunk_to_a_few_pixels_underfit_and_name_their_own_size():
    losses = [2.3 - 1.3 * (1 - math.exp(-5 * i / 90)) for i in range(90)]
    fit = [(0.6, 0.6, 1.2), (0.74, 0.73, 0.95), (0.79, 0.78, 0.9)]
    shrunk = {"data": {"shape": [1, 8, 8], "source_shape": [1, 28, 28]}, "train_accuracy_by_mode": {"eval": 0.8}}
    top = _run({"image_size": 8}, losses=losses, epochs=fit, summary=shrunk).findings[0]
    assert (top.cause, top.severity) == ("underfitting", "warn")
    assert "the images were resized from 28 to 8 px, which leaves 8% of their pixels" in top.evidence
    assert top.fixes[0] == "--image-size 28 (the images' own size)"
    # photos resized from 500 to 64 px keep what a classifier needs: no such finding
    photos = {"data": {"shape": [3, 64, 64], "source_shape": [3, 500, 500]}, "train_accuracy_by_mode": {"eval": 0.8}}
    verdict = _run({"image_size": 64}, losses=losses, epochs=fit, summary=photos)
    assert not any("--image-size" in fix for f in verdict.findings for fix in f.fixes)


def test_a_run_of_a_few_accumulated_steps_that_learned_little_warns_and_names_accumulate():
    verdict = _run(
        {"accumulate": 32, "batch_size": 64, "epochs": 4},
        losses=[2.5, 2.48, 2.45, 2.41],
        epochs=[(0.15, 0.2, 2.3), (0.2, 0.24, 2.2), (0.22, 0.25, 2.2), (0.22, 0.28, 2.1)],
        summary={"train_accuracy_by_mode": {"train": 0.28, "eval": 0.29}},
    )
    top = verdict.findings[0]
    assert (top.cause, top.severity) == ("too_short", "warn")
    assert top.title == "too few optimizer steps to learn: 29% of the training images right"
    assert top.fixes[:2] == ["--accumulate 1 (32x the optimizer steps)", "--batch-size 32 (more steps per epoch)"]


def test_an_augmentation_op_far_past_its_default_is_named_with_the_list_to_use_instead():
    assert strong_regularizers({"augment": ["hflip", "translate:2", "rotate:10", "erase:0.5"]}) == []
    strong = strong_regularizers({"augment": ["hflip", "rotation:180", "rrc:0.05"]})
    assert [str(s) for s in strong] == [
        "--augment rotate 180 is 18x the usual 10",
        "--augment resized_crop 0.05 is 7x smaller than the usual 0.35",
    ]
    assert strong[0].fix == "--augment hflip,rotation:10,rrc:0.05"
    # a shift is judged by the image's side: 12 px is a third of 28 px, not of 96
    assert [s.fix for s in strong_regularizers({"augment": ["translate:12"]})] == ["--augment translate:4"]
    assert strong_regularizers({"augment": ["translate:12"]}, side=96) == []
    verdict = _run(
        {"augment": ["hflip", "rotate:180"]},
        epochs=[(0.5, 0.55, 1.4), (0.6, 0.62, 1.2), (0.64, 0.64, 1.1)],
        summary={"train_accuracy_by_mode": {"train": 0.66, "eval": 0.64}},
    )
    top = verdict.findings[0]
    assert (top.cause, top.title) == ("over_regularized", "over-regularized: --augment rotate 180 is 18x the usual 10")
    assert top.fixes[0].startswith("--augment hflip,rotate:10 (the usual value")


def test_momentum_0_99_at_a_small_lr_is_a_usual_pairing_and_not_blamed():
    poor = [(0.5, 0.5, 1.5), (0.62, 0.62, 1.3), (0.7, 0.71, 1.2)]
    assert "lr_too_high" not in _run({"optimizer": "nesterov", "momentum": 0.99, "lr": 0.01}, epochs=poor).causes


def test_a_first_loss_far_above_ln_c_names_the_init_unless_the_inputs_explain_it():
    losses = [11.24] + [4.5 - 0.2 * i / 90 for i in range(89)]
    poor = [(0.3, 0.3, 5.0), (0.38, 0.35, 4.5), (0.41, 0.36, 4.4)]
    verdict = _run({"init": "normal:1", "model": "mlp"}, losses=losses, epochs=poor)
    top = verdict.findings[0]
    assert (top.cause, top.severity) == ("exploding", "warn")
    assert top.evidence.startswith("the loss at iteration 1 is 11.2 against ln(10) = 2.3 for an untrained net")
    assert top.fixes[0] == "--init kaiming"
    # raw pixels explain a huge first loss: that is the inputs' rule
    raw = {"kind": "monitor", "monitor": "activations", "step": 5, "layers": {"input": {"mean": 72.9, "std": 90.0}}}
    unnormalized = _run({"preprocess": "none"}, losses=losses, epochs=poor, monitors=[raw])
    assert unnormalized.findings[0].cause == "inputs_not_normalized"
    # a net that fits anyway gets a note
    fits = _run({}, losses=losses, epochs=[(0.9, 0.88, 0.4), (0.95, 0.9, 0.3), (0.97, 0.9, 0.3)])
    assert [(f.cause, f.severity) for f in fits.findings if f.cause == "exploding"] == [("exploding", "info")]


# --- session 21: the step-size options, early stopping, the time budget, a gap that still pays ---


def test_an_lr_scaled_up_by_a_tiny_base_batch_names_base_batch_size_and_the_lr_to_give():
    # --lr 0.1 at batch 64 from --base-batch-size 1: a peak of 6.4
    verdict = _run(
        {"optimizer": "nesterov", "lr": 0.1, "base_batch_size": 1, "batch_size": 64},
        summary={"lr": 6.4, "stop_reason": "diverged", "stop_message": "loss is nan at step 12"},
    )
    top = verdict.findings[0]
    assert (top.cause, top.severity) == ("lr_too_high", "fail")
    assert "--base-batch-size 1 scales --lr 0.1 by batch/base = 64x to a peak of 6.4" in top.evidence
    assert top.fixes[:2] == [
        "--base-batch-size 64 (no scaling: the peak is then the lr you set)",
        "--lr 0.01 (a tenth; if the loss then falls steadily, the LR was the cause)",  # not 0.64: --lr is scaled
    ]


def test_muons_relative_step_far_above_its_usual_value_is_the_fix_not_lr():
    verdict = _run(
        {"optimizer": "muon", "muon_lr": 3.0},
        summary={"lr": 0.8, "stop_reason": "diverged", "stop_message": "loss is nan at step 30"},
    )
    top = verdict.findings[0]
    assert "--muon-lr 3 moves each filter bank by 300% of its norm per step, 150x above the usual 0.02" in (
        top.evidence
    )
    assert top.fixes[0] == "--muon-lr 0.02 (its usual value; Muon's lr drives only the other weights)"
    low = _run({"optimizer": "muon", "muon_lr": 1e-4}, losses=[2.3 - 0.001 * i for i in range(90)], epochs=LOW_FIT)
    assert low.findings[0].cause == "lr_too_low"
    assert low.findings[0].fixes[0].startswith("--muon-lr 0.02")


def test_an_adaptive_optimizer_far_above_its_usual_lr_that_does_not_fit_is_a_too_high_lr():
    fit = {"lr": 0.05, "train_accuracy_by_mode": {"train": 0.86, "eval": 0.86}}
    epochs = [(0.6, 0.62, 1.0), (0.75, 0.74, 0.8), (0.85, 0.82, 0.6)]
    top = _run({"optimizer": "adamw", "lr": 0.05}, epochs=epochs, summary=fit).findings[0]
    assert (top.cause, top.severity) == ("lr_too_high", "warn")
    assert top.evidence.startswith("adamw moves each weight by about lr per step whatever its gradient: lr 0.05 is 50x")
    assert top.fixes[0].startswith("--lr 0.005 (a tenth")
    # 10x the usual, or a net that fits its training images, is no evidence
    ten = {**fit, "lr": 0.01}
    assert "lr_too_high" not in _run({"optimizer": "adam", "lr": 0.01}, epochs=epochs, summary=ten).causes
    fits = {"lr": 0.05, "train_accuracy_by_mode": {"train": 0.95, "eval": 0.95}}
    assert "lr_too_high" not in _run({"optimizer": "adam", "lr": 0.05}, epochs=epochs, summary=fits).causes


def test_early_stopping_that_cut_a_run_still_at_its_best_is_not_converged():
    epochs = [(0.45, 0.42, 1.6), (0.72, 0.70, 0.9), (0.8, 0.77, 0.7), (0.83, 0.78, 0.66)]
    summary = {"stop_message": "val_acc has not improved for 1 epochs", "train_accuracy_by_mode": {"eval": 0.82}}
    verdict = _run({"patience": 1, "min_delta": 0.05, "epochs": 10}, epochs=epochs, summary=summary)
    top = verdict.findings[0]
    assert (top.cause, top.severity) == ("not_converged", "warn")
    assert top.evidence == (
        "--patience 1 stopped it after epoch 4 of 10 at validation 78%; its last epoch gained 1.0 points, "
        "under --min-delta 0.05"
    )
    assert top.fixes == ["--min-delta 0 (any gain counts)", "--patience 5 (early stopping waits longer)"]
    # validation past its best and the LR annealed: the stop was right
    worse = [*epochs[:3], (0.83, 0.76, 0.72)]
    lrs = [0.1 * (1 - i / 90) ** 3 for i in range(90)]
    late = _run({"patience": 1, "epochs": 10}, epochs=worse, summary=summary, lrs=lrs)
    assert "not_converged" not in late.causes


def test_a_time_budget_that_cut_most_epochs_from_an_unfit_net_is_too_short():
    summary = {
        "time_budget": {"minutes": 0.05, "planned_epochs": 1, "asked_epochs": 4},
        "train_accuracy_by_mode": {"eval": 0.58},
    }
    # the budget re-planned the run, so its config says 1 epoch; the summary keeps the 4 asked
    verdict = _run({"epochs": 1, "time_budget": 0.05}, losses=[2.5 - 0.04 * i for i in range(31)], summary=summary)
    top = verdict.findings[0]
    assert (top.cause, top.severity, top.title) == (
        "too_short",
        "warn",
        "too short: the time budget cut the run to 1 of 4 epochs",
    )
    assert (
        top.evidence
        == "--time-budget 0.05 minutes fit 1 of the 4 epochs asked (31 steps); 58% of the training images right"
    )
    assert top.fixes[0] == "--time-budget 0.2 (all 4 epochs at the measured pace)"
    fitted = {**summary, "train_accuracy_by_mode": {"eval": 0.95}}
    assert "too_short" not in _run({"epochs": 1, "time_budget": 0.05}, summary=fitted).causes


def test_a_memorized_training_set_is_only_a_note_while_validation_still_gains():
    fit = {"train_accuracy_by_mode": {"eval": 0.98}}
    rising = [(0.62, 0.62, 1.0), (0.9, 0.74, 0.8), (0.95, 0.82, 0.6), (0.97, 0.849, 0.5), (0.98, 0.863, 0.45)]
    top = _run({"epochs": 5}, epochs=rising, summary=fit).findings[0]
    assert (top.cause, top.severity) == ("overfitting", "info")
    assert top.evidence.endswith("validation still rose 1.4 points in the last epoch")
    stalled = [*rising[:4], (0.98, 0.85, 0.52)]  # the validation loss past its low: the gap is harm now
    assert _run({"epochs": 5}, epochs=stalled, summary=fit).findings[0].severity == "warn"


def test_an_underfitting_net_gets_its_mixing_regularizers_turned_off_first():
    fit = {"train_accuracy_by_mode": {"eval": 0.3}}
    flat = [2.3 - 1.2 * min(i, 40) / 40 for i in range(90)]
    top = _run({"cutmix": 2.0, "width": 8, "epochs": 4}, losses=flat, epochs=LOW_FIT, summary=fit).findings[0]
    assert top.cause == "underfitting"
    assert top.fixes[:2] == ["--cutmix 0 (a net that underfits needs no regularizer)", "--width 16"]


def test_class_weights_that_favor_one_class_name_the_weights_not_the_nets_size():
    per_class = {name: (0.99 if name == "c0" else 0.0 if name in ("c3", "c6") else 0.45) for name in CLASSES}
    summary = {
        "test_accuracy": 0.44,
        "test_per_class_accuracy": per_class,
        "data": {"train_class_counts": [200] * 10},
        "train_accuracy_by_mode": {"eval": 0.45},
    }
    flat = [2.3 - 1.2 * min(i, 40) / 40 for i in range(90)]
    weights = ["100"] + ["1"] * 9
    epochs = [(0.3, 0.3, 2.0), (0.4, 0.4, 1.8), (0.45, 0.43, 1.7)]
    verdict = _run({"class_weights": weights}, losses=flat, epochs=epochs, summary=summary)
    top = verdict.findings[0]
    assert (top.cause, top.severity) == ("classes_missed", "warn")
    assert top.title == "classes the model never predicts right: the class weights favor c0"
    assert top.evidence.endswith("; --class-weights gives c0 100x the loss share of c1")
    assert top.fixes[0] == "--class-weights none (every image counts alike)"
    assert "underfitting" not in verdict.causes
    # weights that undo an imbalance give every class the same share: not skewed
    assert weight_skew({"class_weights": ["1", "20"]}, [400, 20], ["a", "b"]) is None
    assert str(weight_skew({"class_weights": ["1", "0"]}, [400, 20], ["a", "b"])) == (
        "--class-weights gives b no share of the loss"
    )


def test_the_first_loss_is_judged_against_the_runs_own_loss_at_chance():
    # the multiclass SVM starts near C - 1 = 9, not ln(10): 9.4 is a normal start, 40 is not
    epochs = [(0.5, 0.5, 1.5), (0.62, 0.62, 1.3), (0.7, 0.71, 1.2)]
    normal = _run({"loss": "svm"}, losses=[9.4] + [9.0 - 0.09 * i for i in range(89)], epochs=epochs)
    assert "exploding" not in normal.causes
    wild = _run({"loss": "svm"}, losses=[40.0] + [9.0 - 0.09 * i for i in range(89)], epochs=epochs)
    exploding = next(f for f in wild.findings if f.cause == "exploding")
    assert exploding.evidence.startswith("the loss at iteration 1 is 40 against 10 - 1 = 9 for an untrained net")


def test_a_net_at_chance_whose_small_steps_barely_lowered_the_loss_has_too_low_an_lr():
    updates = [{"kind": "monitor", "monitor": "updates", "step": 50, "layers": {"0": {"update_ratio": 7.8e-5}}}]
    at_chance = [(0.12, 0.107, 2.9), (0.11, 0.105, 2.9), (0.105, 0.107, 2.9)]
    losses = [3.2 - 0.19 * i / 89 for i in range(90)]  # 6% lower over the run: not flat, yet nothing learned
    fit = {"train_accuracy_by_mode": {"eval": 0.105}}
    top = _run({"model": "linear", "optimizer": "sgd"}, losses=losses, epochs=at_chance, monitors=updates, summary=fit)
    assert top.findings[0].cause == "lr_too_low"
    # the same small steps on a net that learned: no verdict on the LR
    learned = [(0.6, 0.6, 1.2), (0.7, 0.7, 1.0), (0.75, 0.74, 0.9)]
    fits = {"train_accuracy_by_mode": {"eval": 0.75}}
    assert "lr_too_low" not in _run({}, losses=losses, epochs=learned, monitors=updates, summary=fits).causes


def test_batchnorm_statistics_a_few_steps_old_are_the_short_runs_not_an_eval_mismatch():
    summary = {"train_accuracy_by_mode": {"train": 0.56, "eval": 0.31}, "model_facts": {"batchnorm_momentum": 0.1}}
    epochs = [(0.2, 0.2, 2.2), (0.3, 0.28, 2.0), (0.4, 0.3, 1.9), (0.5, 0.31, 1.8)]
    short = _run({"epochs": 4}, losses=[2.4 - 0.1 * i for i in range(8)], epochs=epochs, summary=summary)
    assert (short.findings[0].cause, short.findings[0].severity) == ("too_short", "warn")
    assert "eval_mismatch" not in short.causes
    # frozen running statistics (momentum ~0) are a mismatch however short the run
    frozen = {**summary, "model_facts": {"batchnorm_momentum": 0.0}}
    assert (
        _run({"epochs": 4}, losses=[2.4 - 0.1 * i for i in range(8)], epochs=epochs, summary=frozen).findings[0].cause
        == "eval_mismatch"
    )


def test_a_schedule_that_ends_the_lr_halfway_is_named_and_a_late_step_cut_is_not():
    lrs = [0.05 * 0.01 ** (i // 30) for i in range(120)]  # exp:0.01 at 30 iterations an epoch, 4 epochs
    losses = [2.4 - 1.4 * min(i, 40) / 40 for i in range(120)]
    fit = {"train_accuracy_by_mode": {"train": 0.78, "eval": 0.78}}
    epochs = [(0.56, 0.56, 1.2), (0.76, 0.76, 0.7), (0.78, 0.77, 0.7), (0.78, 0.77, 0.7)]
    top = _run({"schedule": "exp:0.01", "epochs": 4}, losses=losses, lrs=lrs, epochs=epochs, summary=fit).findings[0]
    assert (top.cause, top.title) == (
        "lr_too_low",
        "learning rate too low for much of the run: the schedule decays it too early",
    )
    assert top.evidence.startswith("the LR fell under 1% of its peak 50% into the run (--schedule exp:0.01)")
    # a 10x step schedule that reaches 1% of its peak only for the last epoch of four is not named
    steps = [0.05 * (1 if i < 60 else 0.1 if i < 90 else 0.0099) for i in range(120)]
    assert "lr_too_low" not in _run({"schedule": "step:2,3"}, losses=losses, lrs=steps, summary=fit).causes


def _overshooting(ratio: float, spikes: bool, fit: float):
    losses = [1.0 + 0.3 * math.exp(-i / 30) for i in range(90)]
    for i in range(12, 90, 14):  # 6 jumps to twice the running loss: ~7% of the steps spike
        losses[i] = 2.2 if spikes else losses[i]
    updates = [{"kind": "monitor", "monitor": "updates", "step": 50, "layers": {"0": {"update_ratio": ratio}}}]
    epochs = [(fit - 0.1, fit - 0.1, 0.9), (fit - 0.03, fit - 0.04, 0.8), (fit, fit - 0.03, 0.75)]
    summary = {"train_accuracy_by_mode": {"train": fit, "eval": fit}, "lr": 3.0}
    return _run({"optimizer": "sgd", "lr": 3.0}, losses=losses, epochs=epochs, monitors=updates, summary=summary)


def test_big_steps_and_a_spiky_loss_together_are_a_too_high_lr_below_a_fit():
    top = _overshooting(0.0357, True, 0.81).findings[0]
    assert top.cause == "lr_too_high" and top.fixes[0].startswith("--lr 0.3 (a tenth")
    assert top.evidence.startswith("each step changes the weights by 0.036 of their norm (healthy ~1e-3)")
    assert "of the steps jump the loss above 1.5x its recent median" in top.evidence
    # either sign alone, or both in a net that fits, is not enough
    assert "lr_too_high" not in _overshooting(0.0357, False, 0.81).causes
    assert "lr_too_high" not in _overshooting(0.012, True, 0.81).causes
    assert "lr_too_high" not in _overshooting(0.0357, True, 0.93).causes


def test_dropout_0_99_that_blows_up_the_first_loss_and_diverges_is_the_dropouts_not_the_inits():
    # inverted dropout scales each kept unit by 1 / (1 - p) = 100: logits, loss and steps blow up from step 1
    losses = [8.4, 30.0, 250.0]
    summary = {"stop_reason": "diverged", "stop_message": "loss became NaN at iteration 4"}
    verdict = _run({"dropout": 0.99}, losses=losses, epochs=[(0.09, 0.1, 9.0)], summary=summary)
    top = verdict.findings[0]
    assert (top.cause, top.severity) == ("over_regularized", "fail") and "exploding" not in verdict.causes
    assert top.title == "over-regularized: --dropout 0.99 is 2x the usual 0.5"
    assert (
        "inverted dropout multiplies each kept unit by 1 / (1 - 0.99) = 100, so the first loss was 8.4" in top.evidence
    )


def _still(ratio: float) -> list[dict]:
    return [
        {
            "kind": "monitor",
            "monitor": "updates",
            "step": s,
            "layers": {str(k): {"update_ratio": ratio} for k in range(5)},
        }
        for s in (20, 40, 60)
    ]


def test_most_layers_standing_still_under_a_tiny_muon_step_is_a_too_low_lr_though_the_head_learned():
    # the loss fell 46% (the head, on lr 0.8) and then stalled at 75% fit; the filters step 1e-6 of their norm
    losses = [2.48 - 1.15 * (1 - math.exp(-6 * i / 90)) for i in range(90)]
    fit = [(0.70, 0.69, 1.0), (0.74, 0.73, 0.9), (0.75, 0.73, 0.9)]
    options = {"optimizer": "muon", "muon_lr": 1e-6}
    summary = {"lr": 0.8, "train_accuracy_by_mode": {"train": 0.75, "eval": 0.75}}
    verdict = _run(options, losses=losses, epochs=fit, summary=summary, monitors=_still(7.6e-7))
    top = verdict.findings[0]
    assert (top.cause, top.severity) == ("lr_too_low", "warn")
    assert top.evidence.startswith("each step changes the median layer's weights by 7.6e-07 of their norm")
    assert "--muon-lr 1e-06 moves each filter bank by 0% of its norm per step, 20000x below" in top.evidence
    assert top.fixes[0].startswith("--muon-lr 0.02")
    # steps of a healthy size, or a net that fits: not this
    assert "lr_too_low" not in _run(options, losses=losses, epochs=fit, summary=summary, monitors=_still(1e-3)).causes
    fitted = {"lr": 0.8, "train_accuracy_by_mode": {"train": 0.95, "eval": 0.95}}
    assert "lr_too_low" not in _run(options, losses=losses, epochs=fit, summary=fitted, monitors=_still(7.6e-7)).causes


def test_sam_far_past_its_usual_rho_is_the_regularizer_that_holds_the_net_back():
    assert strong_regularizers({"sam": 0.05}) == [] and strong_regularizers({"sam": 0.3}) == []
    verdict = _run({"sam": 5.0}, epochs=LOW_FIT, summary={"train_accuracy_by_mode": {"train": 0.2, "eval": 0.2}})
    top = verdict.findings[0]
    assert top.title == "over-regularized: --sam 5 is 100x the usual 0.05"
    assert top.fixes[0].startswith("--sam 0.05 (the usual value; if training accuracy then rises, --sam was the cause)")


def _stepping(update_ratio: float, alpha: float) -> list[dict]:
    """Monitor rows: every layer's update ratio, and the step-size instrument's alpha, at two steps."""
    rows = []
    for step in (10, 50):
        layers = {"0": {"update_ratio": update_ratio}, "1": {"update_ratio": update_ratio}}
        rows.append({"kind": "monitor", "monitor": "updates", "step": step, "layers": layers})
        rows.append({"kind": "monitor", "monitor": "step_size", "step": step, "layers": {"model": {"alpha": alpha}}})
    return rows


SLOWED = [2.7 - 0.8 * (1 - math.exp(-8 * i / 90)) for i in range(90)]  # -30%, flat over the last third
POOR = [(0.16, 0.16, 2.3), (0.31, 0.31, 2.0), (0.37, 0.37, 1.9), (0.38, 0.38, 1.9)]


def test_small_steps_that_cover_none_of_the_way_down_in_a_net_short_of_fitting_are_a_too_low_lr():
    fit = {"train_accuracy_by_mode": {"eval": 0.43}, "lr": 0.003}
    verdict = _run({"optimizer": "sgd", "lr": 0.003, "model": "mlp"}, SLOWED, POOR, fit, _stepping(3.2e-4, -0.992))
    top = verdict.findings[0]
    assert (top.cause, top.severity) == ("lr_too_low", "warn")
    assert top.evidence.startswith(
        "each step changes the weights by 3.2e-04 of their norm (healthy ~1e-3) and goes 1% of the way to the "
        "lowest loss along its own direction (median alpha -0.992; -1 is no move, 0 lands on the minimum); "
        "the net gets only 43% of its training images right"
    )
    assert top.fixes[0] == "--lr 0.03 (10x; convcoach check sweeps the range)"
    # a net too small steps at the usual size: its poor fit stays underfitting's
    small = _run({"model": "mlp", "width": 2}, SLOWED, POOR, fit, _stepping(1.6e-3, -0.99))
    assert small.causes[0] == "underfitting"


def test_steps_that_land_past_the_minimum_in_a_net_short_of_fitting_are_a_too_high_lr():
    fit = {"train_accuracy_by_mode": {"eval": 0.57}, "lr": 0.5}
    verdict = _run({"optimizer": "sgd", "lr": 0.5, "model": "mlp"}, SLOWED, POOR, fit, _stepping(6.6e-3, 0.23))
    top = verdict.findings[0]
    assert (top.cause, top.severity) == ("lr_too_high", "warn")
    assert "steps overshoot: along each update the loss passes its lowest point (median alpha 0.23; " in top.evidence
    # healthy runs stop short of the minimum (alpha -1 to -0.2)
    short = _run({"optimizer": "sgd", "lr": 0.5, "model": "mlp"}, SLOWED, POOR, fit, _stepping(6.6e-3, -0.3))
    assert "lr_too_high" not in short.causes


def test_a_usual_dropout_that_a_small_net_cannot_spare_is_over_regularization():
    fit = {"train_accuracy_by_mode": {"train": 0.375, "eval": 0.594}, "lr": 1e-3}
    slowed = [(0.32, 0.4, 1.8), (0.37, 0.54, 1.6), (0.39, 0.58, 1.55)]
    verdict = _run({"model": "mlp", "width": 16, "dropout": 0.5, "optimizer": "adam"}, SLOWED, slowed, fit)
    top = verdict.findings[0]
    assert top.cause == "over_regularized"
    assert top.title == "over-regularized: --dropout 0.5 is more than this net can spare"
    assert top.evidence == (
        "with --dropout at work the net gets 38% of its own training images right, without it 59%: "
        "it takes 22 points from a fit that is short already"
    )
    assert top.fixes[0] == "--dropout 0 (a net that underfits needs no regularizer)"
    assert top.fixes[1] == "--width 32 (more units to drop from)"
    # a net that fits its training images can spare what dropout takes
    fits = {"train_accuracy_by_mode": {"train": 0.7, "eval": 0.93}, "lr": 1e-3}
    good = [(0.6, 0.8, 0.6), (0.66, 0.86, 0.45), (0.7, 0.88, 0.4)]
    assert "over_regularized" not in _run({"model": "mlp", "dropout": 0.5}, SLOWED, good, fits).causes


LONG_TAIL = [285, 142, 71, 35, 17, 8, 3, 1, 1, 1]


def test_a_long_tailed_training_split_is_class_imbalance_not_a_test_split_drawn_otherwise():
    names = CLASSES
    val = dict(zip(names, [1.0, 1.0, 1.0] + [0.0] * 7))
    test = dict(zip(names, [0.91, 0.94, 0.89] + [0.0] * 7))
    summary = {
        "data": {"train_class_counts": LONG_TAIL, "train": 564, "val": 35, "test": 1000},
        "test_accuracy": 0.278,
        "test_per_class_accuracy": test,
        "test_class_counts": [100, 90, 114, 86, 86, 90, 96, 117, 109, 112],
        "val_per_class_accuracy": val,
        "val_class_counts": [15, 8, 4, 2, 1, 1, 1, 1, 1, 1],
        "train_accuracy_by_mode": {"train": 0.83, "eval": 0.83},
    }
    epochs = [(0.6, 0.34, 1.8), (0.8, 0.69, 1.0), (0.84, 0.77, 0.8)]
    verdict = _run({}, epochs=epochs, summary=summary, monitors=_dying((1, 0.0), (30, 0.59)))
    assert verdict.findings[0].cause == "class_imbalance"
    assert "test_differs" not in verdict.causes and "lr_too_high" not in verdict.causes
    # the units that died for want of the rare classes are a note
    assert next(f.severity for f in verdict.findings if f.cause == "dead_units") == "info"


def test_a_net_that_underfits_and_never_gets_the_hardest_class_right_is_underfitting_not_missed_classes():
    test = dict(zip(CLASSES, [0.8, 0.95, 0.32, 0.32, 0.71, 0.88, 0.06, 0.74, 0.71, 0.95]))
    val = dict(zip(CLASSES, [0.76, 0.96, 0.39, 0.35, 0.65, 0.89, 0.057, 0.71, 0.69, 0.94]))
    summary = {
        "data": {"train_class_counts": [200] * 10},
        "test_accuracy": 0.646,
        "test_per_class_accuracy": test,
        "val_per_class_accuracy": val,
        "test_class_counts": [1000] * 10,
        "val_class_counts": [300] * 10,
        "train_accuracy_by_mode": {"train": 0.61, "eval": 0.65},
    }
    epochs = [(0.4, 0.5, 1.6), (0.47, 0.6, 1.5), (0.49, 0.62, 1.45)]
    options = {"model": "vgg", "width": 4, "mixup": 0.4, "dropout": 0.3}
    verdict = _run(options, SLOWED, epochs, summary)
    top = verdict.findings[0]
    assert (top.cause, top.severity) == ("underfitting", "warn")
    assert (
        "; it never gets whole classes right (c6 6% on test, 6% on validation), though training holds as many "
        "of them as of the rest"
    ) in top.evidence
    assert top.fixes[0] == "--mixup 0 (a net that underfits needs no regularizer)"
    assert "classes_missed" not in verdict.causes
    # the same misses with a class rare in training stay class_imbalance's and classes_missed's to name
    rare = {**summary, "data": {"train_class_counts": [200] * 6 + [5] + [200] * 3}}
    assert "underfitting" not in [f.cause for f in _run(options, SLOWED, epochs, rare).findings if f.severity == "warn"]
