"""Diagnosis rules from the lectures' plot reading and babysitting notes: each reads the Facts (and
the findings of the rules before it) and returns a Finding or None. Each rule's registration gives its
place (`order`: causes before symptoms) and whether it reads the curves (`curve`: skipped when too short)."""

from __future__ import annotations

import math

from .diagnosis import Facts, Finding
from .rule_registry import RULES

MIN_ITERATIONS = 10  # with fewer optimizer steps the loss and accuracy curves say nothing yet

FLAT = 0.05  # relative loss drop over the run below which the loss "barely moves"
HEALTHY_UPDATE = (1e-4, 3e-2)  # update/weight ratio per step; ~1e-3 is healthy (cs231n)
STRUCTURAL = {
    "lr_too_high",
    "dead_units",
    "vanishing",
    "exploding",
    "inputs_not_normalized",
    "eval_mismatch",
    "labels_no_signal",
}
MISMATCH = 0.25  # accuracy on training images in train mode minus in eval mode


def _pct(value: float) -> str:
    return f"{value:.0%}"


def _at_chance(facts: Facts) -> bool:
    """Best validation accuracy within 3 standard errors (or 5 points) of guessing, with enough
    validation images to tell."""
    if facts.diverged or facts.best_val_acc is None or facts.chance is None or facts.val_count < 10:
        return False
    noise = 3 * math.sqrt(facts.chance * (1 - facts.chance) / facts.val_count)
    return noise <= 0.2 and facts.best_val_acc <= facts.chance + max(noise, 0.05)


def _flat(facts: Facts) -> bool:
    return facts.loss_drop is not None and facts.loss_drop < FLAT


@RULES.register("lr_too_high", order=10)
def lr_too_high(facts: Facts, found: list[Finding]) -> Finding | None:
    fixes = [
        "lower --lr 3-10x (convcoach check sweeps it; with --optimizer muon, --muon-lr sets the conv filters' step)",
        "a warm-up (--warmup 500)",
        "batch normalization (--norm batch)",
    ]
    if facts.diverged:
        return Finding(
            "lr_too_high",
            "fail",
            "learning rate too high: the loss exploded",
            facts.stop_message or "the loss became NaN/inf",
            fixes,
        )
    ratio = facts.update_ratio
    if ratio is not None and ratio > HEALTHY_UPDATE[1] and (_flat(facts) or (facts.loss_noise or 0) > 0.3):
        return Finding(
            "lr_too_high",
            "warn",
            "learning rate too high: noisy loss, no progress",
            f"each step changes the weights by {ratio:.1e} of their norm (healthy ~1e-3); "
            f"loss {facts.loss_start:.3g} -> {facts.loss_end:.3g}",
            fixes,
        )
    return None


@RULES.register("dead_units", order=20)
def dead_units(facts: Facts, found: list[Finding]) -> Finding | None:
    if facts.dead_max is None or facts.dead_max < 0.5:
        return None
    return Finding(
        "dead_units",
        "fail" if facts.dead_max >= 0.9 else "warn",
        "dead ReLUs",
        f"{_pct(facts.dead_max)} of the units of {facts.dead_layer} output zero for a whole batch: "
        "they pass no gradient",
        [
            "look for large negative biases or a broken init (--init kaiming)",
            "a lower --lr (large steps kill ReLUs)",
            "--activation leaky_relu",
            "batch normalization (--norm batch)",
        ],
    )


@RULES.register("vanishing", order=30)
def vanishing(facts: Facts, found: list[Finding]) -> Finding | None:
    if any(f.cause == "dead_units" for f in found):
        return None
    evidence = []
    if facts.act_shrink is not None and facts.act_shrink < 0.2:
        evidence.append(
            f"activations shrink layer by layer at init (std {facts.act_first_std:.2g} -> {facts.act_last_std:.2g}): "
            "init std too small"
        )
    if facts.grad_ratio is not None and facts.grad_ratio < 1e-3:
        evidence.append(f"the first layer's gradient is {facts.grad_ratio:.1e} of the last layer's")
    if not evidence:
        return None
    return Finding(
        "vanishing",
        "fail" if _flat(facts) else "warn",
        "vanishing activations/gradients",
        "; ".join(evidence),
        [
            "--init xavier (tanh/sigmoid) or kaiming (ReLU)",
            "batch normalization (--norm batch)",
            "skip links (--model resnet)",
            "ReLU instead of tanh/sigmoid",
        ],
    )


@RULES.register("exploding", order=40)
def exploding(facts: Facts, found: list[Finding]) -> Finding | None:
    if facts.diverged:
        return None
    evidence = []
    if facts.grad_nonfinite:
        evidence.append("gradient norms became NaN/inf")
    if facts.saturated_max is not None and facts.saturated_max >= 0.5:
        evidence.append(
            f"{_pct(facts.saturated_max)} of a tanh/sigmoid layer's outputs are saturated: init std too large"
        )
    if facts.act_shrink is not None and facts.act_shrink > 10:
        evidence.append(
            f"activations grow layer by layer at init (std {facts.act_first_std:.2g} -> {facts.act_last_std:.2g})"
        )
    if not evidence:
        return None
    return Finding(
        "exploding",
        "warn",
        "exploding or saturated activations",
        "; ".join(evidence),
        ["a smaller init (--init xavier / kaiming)", "batch normalization (--norm batch)", "a lower --lr"],
    )


@RULES.register("inputs_not_normalized", order=50)
def inputs_not_normalized(facts: Facts, found: list[Finding]) -> Finding | None:
    if facts.input_mean is None or facts.input_std is None:
        return None
    if abs(facts.input_mean) <= 0.25 and 0.5 <= facts.input_std <= 2.0:
        return None
    return Finding(
        "inputs_not_normalized",
        "warn",
        "inputs not normalized",
        f"the training batches have mean {facts.input_mean:.3g} and std {facts.input_std:.3g} (want ~0 and ~1)",
        ["--preprocess meanstd (per-channel mean/std of the training split)"],
    )


@RULES.register("eval_mismatch", order=60)
def eval_mismatch(facts: Facts, found: list[Finding]) -> Finding | None:
    train, evaluation = facts.mode_train_acc, facts.mode_eval_acc
    if facts.diverged or train is None or evaluation is None or train - evaluation < MISMATCH:
        return None
    return Finding(
        "eval_mismatch",
        "warn",
        "the model behaves differently in evaluation mode",
        f"the final model gets {_pct(train)} of training images right in train mode "
        f"but {_pct(evaluation)} in eval mode "
        f"after {facts.iterations} iterations: "
        "BatchNorm's running statistics have not settled (or dropout is too strong)",
        [
            "train longer (more iterations)",
            "--norm group:8 or layer (no running statistics)",
            "a larger --batch-size",
            "less --dropout",
        ],
    )


@RULES.register("too_short", order=70)
def too_short(facts: Facts, found: list[Finding]) -> Finding | None:
    if facts.diverged or facts.iterations >= MIN_ITERATIONS:
        return None
    return Finding(
        "too_short",
        "info",
        "too short to read the curves",
        f"only {facts.iterations} optimizer steps (fewer than {MIN_ITERATIONS}): "
        "the curve rules (learning rate, over- and underfitting) were skipped",
        ["more steps: more --epochs, more data (--subset) or a smaller --batch-size"],
    )


@RULES.register("labels_no_signal", order=80, curve=True)
def labels_no_signal(facts: Facts, found: list[Finding]) -> Finding | None:
    if any(f.cause in STRUCTURAL for f in found) or not _at_chance(facts):
        return None
    learning = (facts.update_ratio is not None and facts.update_ratio >= HEALTHY_UPDATE[0]) or (
        facts.train_acc is not None and facts.train_acc > facts.best_val_acc + 0.1
    )
    if not learning:
        return None
    train = f" while training accuracy reaches {_pct(facts.train_acc)}" if facts.train_acc is not None else ""
    return Finding(
        "labels_no_signal",
        "warn",
        "labels look unrelated to the images",
        f"validation accuracy stays at chance ({_pct(facts.best_val_acc)} for {facts.classes} classes){train}, "
        "though the weights move normally",
        ["check that images and labels are shuffled together", "run convcoach check (its data_labels probe)"],
    )


@RULES.register("lr_too_low", order=90, curve=True)
def lr_too_low(facts: Facts, found: list[Finding]) -> Finding | None:
    if not _flat(facts) or facts.diverged or any(f.cause in STRUCTURAL for f in found):
        return None
    if facts.loss_drop is not None and facts.loss_drop < -FLAT:
        return None  # a rising loss is not a too-small step
    ratio = facts.update_ratio
    if ratio is not None and ratio >= HEALTHY_UPDATE[0]:
        return None
    updates = (
        f"; each step changes the weights by {ratio:.1e} of their norm (healthy ~1e-3)" if ratio is not None else ""
    )
    return Finding(
        "lr_too_low",
        "warn",
        "learning rate too low: the loss barely moves",
        f"loss {facts.loss_start:.3g} -> {facts.loss_end:.3g} over {facts.iterations} iterations "
        f"({facts.loss_drop:.1%}){updates}",
        ["raise --lr 3-10x (convcoach check sweeps it; with --optimizer muon, --muon-lr sets the conv filters' step)"],
    )


@RULES.register("overfitting", order=100, curve=True)
def overfitting(facts: Facts, found: list[Finding]) -> Finding | None:
    if facts.gap is None or facts.gap < 0.1 or any(f.cause in STRUCTURAL for f in found):
        return None
    train = facts.mode_eval_acc if facts.mode_eval_acc is not None else facts.train_acc
    # a growing gap counts once the training set is memorized or the validation loss stopped falling
    # (early in training the running training accuracy lags behind)
    settled = bool(facts.val_loss_stalled) or (train or 0.0) >= 0.98
    growing = facts.gap_growth is not None and facts.gap_growth >= 0.05 and settled
    rising = facts.val_loss_rise is not None and facts.val_loss_rise >= 0.1
    if not (growing or rising):
        return None
    evidence = (
        f"training accuracy {_pct(train or 0)} vs validation {_pct(facts.val_acc or 0)} "
        f"(gap {facts.gap * 100:.0f} points"
    )
    evidence += f", {facts.gap_growth * 100:.0f} more than at epoch {facts.gap_min_epoch})" if growing else ")"
    if rising:
        evidence += f"; validation loss up {_pct(facts.val_loss_rise)} since epoch {facts.val_loss_min_epoch}"
    return Finding(
        "overfitting",
        "warn",
        "overfitting",
        evidence,
        [
            "more data or augmentation (--augment hflip,translate:2)",
            "regularization (--reg l2:1e-4, --weight-decay 5e-4)",
            "dropout (--dropout 0.5)",
            "early stopping (--patience 5)",
        ],
    )


@RULES.register("plateau", order=110, curve=True)
def plateau(facts: Facts, found: list[Finding]) -> Finding | None:
    if found or facts.late_drop is None or facts.loss_drop is None or facts.loss_drop < 0.2:
        return None
    if facts.late_drop >= 0.01 or not facts.lr_held or (facts.train_acc or 0) >= 0.98:
        return None
    return Finding(
        "plateau",
        "info",
        "plateau",
        f"the loss fell {facts.loss_drop:.0%} but only {facts.late_drop:.1%} over the last third, "
        "at an undecayed learning rate",
        ["decay the learning rate (--schedule cosine, step:E1,E2 or onecycle)"],
    )


@RULES.register("underfitting", order=120, curve=True)
def underfitting(facts: Facts, found: list[Finding]) -> Finding | None:
    """High training error once the loss has slowed down (while it still falls fast, it is too early to tell)."""
    if any(f.severity != "info" for f in found) or facts.train_acc is None or facts.train_acc >= 0.8 or _flat(facts):
        return None
    if facts.late_drop is None or facts.late_drop >= 0.05:
        return None
    return Finding(
        "underfitting",
        "warn",
        "underfitting: the training error is high",
        f"training accuracy only {_pct(facts.train_acc)}"
        + (f" (validation {_pct(facts.val_acc)})" if facts.val_acc is not None else "")
        + f" and the loss fell only {facts.late_drop:.1%} over the last third",
        [
            "more capacity (--width, --depth)",
            "batch normalization (--norm batch)",
            "skip links (--model resnet)",
            "train longer (--epochs)",
            "a higher --lr",
        ],
    )


@RULES.register("at_chance", order=130, curve=True)
def at_chance(facts: Facts, found: list[Finding]) -> Finding | None:
    """The last word: no rule found a cause, yet the model scores no better than guessing."""
    if any(f.severity != "info" for f in found) or not _at_chance(facts):
        return None
    return Finding(
        "at_chance",
        "warn",
        "the model has not learned: validation accuracy is at chance",
        f"best validation accuracy {_pct(facts.best_val_acc)} for {facts.classes} classes "
        f"(chance {_pct(facts.chance)}) "
        f"after {facts.iterations} iterations",
        [
            "train longer (more --epochs)",
            "convcoach check: its LR sweep and overfit test find a working --lr",
            "check that images and labels belong together",
        ],
    )
