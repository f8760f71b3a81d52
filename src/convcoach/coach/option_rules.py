"""Diagnosis rules whose cause is one of the run's own options, confirmed by what it measured: a
regularizer far past its usual strength that keeps the net from fitting its training set, BatchNorm at
a batch too small for its statistics, a warm-up the run never finishes, and a symmetric init."""

from __future__ import annotations

from .advice import strong_regularizers
from .diagnosis import Facts, Finding
from .rule_registry import RULES
from .rules import FITS, _pct, chance_loss, train_fit

SMALL_GAP = 0.05  # train - validation accuracy (or a quarter of the training error) that is not overfitting
BN_BATCH = 8  # images per process below which BatchNorm's batch statistics are noise
WARMUP_REACHED = 0.5  # share of the peak LR a run must reach


def _overfits(facts: Facts, fit: float) -> bool:
    """Training error far below validation error: the net overfits, so a regularizer is not holding it back."""
    return facts.val_acc is not None and fit - facts.val_acc > max(SMALL_GAP, 0.25 * (1 - fit))


@RULES.register("over_regularized", order=5)
def over_regularized(facts: Facts, found: list[Finding]) -> Finding | None:
    """The net cannot fit its own training images, is not overfitting, and an option regularizes far
    past its usual strength: that option is the cause."""
    strong = strong_regularizers(facts.options, facts.image_side)
    fit = train_fit(facts)
    if not strong:
        return _dropped_too_much(facts)
    if fit is None or fit >= FITS:
        return None
    if _overfits(facts, fit):
        return None  # its training error is far below its validation error: overfitting, not held back
    first = strong[0]
    expected, written = chance_loss(facts) or (None, "")
    dominated = first.flag == "--reg" and expected and facts.loss_start and facts.loss_start > 10 * expected
    # inverted dropout multiplies each kept unit by 1 / (1 - p): 100x at 0.99, logits and steps with it
    scaled = first.flag == "--dropout" and first.value >= 0.9
    if facts.diverged and not (dominated or scaled):
        return None  # a divergence is the learning rate's unless the penalty dwarfs the data loss
    start = ""
    if dominated:
        start = f"; the training loss starts at {facts.loss_start:.3g} against {written} for the data alone"
    elif scaled:
        start = (
            f"; inverted dropout multiplies each kept unit by 1 / (1 - {first.value:g}) = {1 / (1 - first.value):.0f}"
            + (f", so the first loss was {facts.loss_first:.3g} against {written}" if facts.loss_first else "")
            + ("; then the loss diverged" if facts.diverged else "")
        )
    fixes = [f"{first.fix} (the usual value; if training accuracy then rises, {first.flag} was the cause)"]
    fixes += [s.fix for s in strong[1:]]
    return Finding(
        "over_regularized",
        "fail" if facts.diverged else "warn",
        f"over-regularized: {first}",
        f"the net gets only {_pct(fit)} of its own training images right"
        + (f" (validation {_pct(facts.val_acc)})" if facts.val_acc is not None else "")
        + f": the regularization holds it back from fitting, not overfitting{start}",
        fixes + ["more capacity once the regularizer is back to its usual value (--width)"],
    )


DROPPING = ("dropout", "dropconnect", "stochastic_depth")
HIDDEN = 0.15  # training accuracy the dropping costs (eval mode minus train mode) that a short fit cannot spare


def _dropped_too_much(facts: Facts) -> Finding | None:
    """A dropping regularizer at a usual strength that a small net cannot afford: with it at work the
    net gets far fewer of its training images right than without, and even without it fits under 80%."""
    on = [(name, value) for name in DROPPING if isinstance(value := facts.options.get(name), int | float) and value > 0]
    train, fit = facts.mode_train_acc, facts.mode_eval_acc
    if not on or train is None or fit is None or fit >= 0.8 or fit - train < HIDDEN:
        return None
    if _overfits(facts, fit):
        return None  # overfitting: the regularizer has work to do
    name, value = max(on, key=lambda item: item[1])
    flag, width = f"--{name.replace('_', '-')}", facts.options.get("width")
    return Finding(
        "over_regularized",
        "warn",
        f"over-regularized: {flag} {value:g} is more than this net can spare",
        f"with {flag} at work the net gets {_pct(train)} of its own training images right, without it "
        f"{_pct(fit)}: it takes {100 * (fit - train):.0f} points from a fit that is short already",
        [
            f"{flag} 0 (a net that underfits needs no regularizer)",
            f"--width {2 * width} (more units to drop from)" if width else "more capacity (--width)",
        ],
    )


@RULES.register("bn_small_batch", order=6)
def bn_small_batch(facts: Facts, found: list[Finding]) -> Finding | None:
    """BatchNorm estimates each channel's mean and variance from the batch: from 2-8 images that is noise,
    and the running statistics used in evaluation do not match what training saw."""
    batch = facts.options.get("batch_size")
    processes = max(1, int(facts.options.get("nproc") or 1))
    layers = facts.batchnorm_layers
    if layers is None:
        layers = 1 if facts.options.get("norm") == "batch" else 0
    if not layers or batch is None or batch // processes > BN_BATCH:
        return None
    per = batch // processes
    modes = ""
    if facts.mode_train_acc is not None and facts.mode_eval_acc is not None:
        modes = (
            f"; on training images the net scores {_pct(facts.mode_train_acc)} with batch statistics "
            f"and {_pct(facts.mode_eval_acc)} with its running statistics"
        )
    return Finding(
        "bn_small_batch",
        "warn",
        f"batch too small for BatchNorm: {per} images per batch",
        f"each of the {layers} BatchNorm layers estimates a channel's mean and variance from {per} images{modes}",
        ["--norm group:8 (statistics per image, any batch size)", "--batch-size 32 or more", "--norm layer"],
    )


@RULES.register("warmup_too_long", order=7)
def warmup_too_long(facts: Facts, found: list[Finding]) -> Finding | None:
    warmup = facts.options.get("warmup") or 0
    if not warmup or facts.lr_reached is None or facts.lr_reached >= WARMUP_REACHED:
        return None
    shorter = max(1, facts.iterations // 10)
    return Finding(
        "warmup_too_long",
        "warn",
        "the warm-up outlasts the run: the learning rate never reaches its peak",
        f"the LR reached only {facts.lr_reached:.0%} of its peak {facts.lr_peak:.3g}: "
        f"--warmup is {warmup} iterations, the run {facts.iterations}",
        [f"--warmup {shorter} (a tenth of the run)", "--warmup 0 (the schedule's own start)"],
    )


@RULES.register("symmetric_init", order=8)
def symmetric_init(facts: Facts, found: list[Finding]) -> Finding | None:
    """Every unit of a layer starts alike: they get the same gradient and stay alike, so the layer acts
    as one unit however wide it is."""
    if facts.alike is None or facts.alike > 1e-3:
        return None
    init = facts.options.get("init")
    return Finding(
        "symmetric_init",
        "fail",
        "symmetric init: every unit of a layer is the same",
        f"the rows of layer '{facts.alike_layer}' differ by {facts.alike:.1e} of their norm at the last sample"
        + (f" (--init {init})" if init else "")
        + ": identical units get identical gradients and never part",
        ["--init auto (He/Xavier, random per unit)", "--init kaiming"],
    )
