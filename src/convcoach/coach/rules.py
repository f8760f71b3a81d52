"""Diagnosis rules from the lectures' plot reading and babysitting notes: each reads the Facts (and
the findings of the rules before it) and returns a Finding or None. Each rule's registration gives its
place (`order`: causes before symptoms) and whether it reads the curves (`curve`: skipped when too short).
Fixes are ranked, most likely first, and concrete; diagnose() drops those already in effect."""

from __future__ import annotations

import math

from ..config import TrainConfig
from ..train.lr_finder import ADAPTIVE
from ..train.optim import DEFAULT_LR
from .advice import EXPECTED_INITIAL_LOSS, rare_classes, weight_skew
from .diagnosis import Facts, Finding
from .rule_registry import RULES

MIN_ITERATIONS = 10  # with fewer optimizer steps the loss and accuracy curves say nothing yet

FLAT = 0.05  # relative loss drop over the run below which the loss "barely moves"
HEALTHY_UPDATE = (1e-4, 3e-2)  # update/weight ratio per step; ~1e-3 is healthy (cs231n)
STRUCTURAL = {
    "over_regularized",
    "bn_small_batch",
    "warmup_too_long",
    "symmetric_init",
    "lr_too_high",
    "dead_units",
    "vanishing",
    "exploding",
    "inputs_not_normalized",
    "eval_mismatch",
    "labels_no_signal",
    "split_leakage",
    "duplicated_images",
    "label_noise",
    "test_differs",
}
MISMATCH = 0.25  # accuracy on training images in train mode minus in eval mode
STILL_RISING = 0.02  # validation accuracy gained in the last epoch that says "not converged"...
STILL_FALLING = 0.08  # ...while the last third of the run still adds this share of the training loss's drop
PLATEAU_SHARE = 0.1  # the last third adding less than this share of the loss's whole drop is a plateau
LOSS_BLOWUP = 10  # a validation loss above this many times ln(C) is an exploded model, not a bad fit


FITS = 0.9  # training accuracy (eval mode, on training images) a net that is not held back reaches


def train_fit(facts: Facts) -> float | None:
    """Accuracy on training images in eval mode (no dropout, no mixing), else the running training accuracy."""
    return facts.mode_eval_acc if facts.mode_eval_acc is not None else facts.train_acc


def halfway(facts: Facts) -> float:
    """The accuracy halfway from chance to every image right: a fit below it is far off."""
    return ((facts.chance or 0.0) + 1) / 2


def _pct(value: float) -> str:
    return f"{value:.0%}"


def _lr(facts: Facts, times: float) -> str:
    """The run's peak LR times `times`, as the --lr to give (where --base-batch-size scaled --lr up or
    down to the peak, the --lr that gives that peak)."""
    if not facts.lr_peak:
        return f"--lr {times:g}x the current"
    scale = _batch_scale(facts) or 1.0
    return f"--lr {facts.lr_peak / scale * times:.2g}"


def _batch_scale(facts: Facts) -> float | None:
    """peak / --lr where --base-batch-size scaled the configured LR (at least 1.5x either way), else None."""
    lr, base = facts.options.get("lr"), facts.options.get("base_batch_size")
    if not base or not isinstance(lr, int | float) or lr <= 0 or not facts.lr_peak:
        return None
    scale = facts.lr_peak / lr
    return scale if max(scale, 1 / scale) >= 1.5 else None


USUAL_MUON_LR = TrainConfig().muon_lr
FAR = 10  # a step-size option this many times its usual value is far off
ADAPTIVE_FAR = 20  # an adaptive optimizer's LR this many times its usual one (Adam: 0.02 against 1e-3)


def _step_options(facts: Facts, high: bool) -> tuple[list[str], list[str]]:
    """(evidence, fixes) from the options that set the step size, for steps too large (`high`) or too
    small: --base-batch-size's scaling of --lr, Muon's relative step, an adaptive optimizer's LR (Adam-family
    steps move every weight by about lr whatever the gradient's scale, so their usual LR holds for any net)."""
    options, evidence, fixes = facts.options, [], []
    scale = _batch_scale(facts)
    if scale is not None and (scale >= 4 if high else scale <= 0.25):
        batch = (options.get("batch_size") or 0) * (options.get("accumulate") or 1)
        evidence.append(
            f"--base-batch-size {options['base_batch_size']} scales --lr {options['lr']:g} by "
            f"batch/base = {scale:.3g}x to a peak of {facts.lr_peak:.3g}"
        )
        fixes.append(f"--base-batch-size {batch} (no scaling: the peak is then the lr you set)")
    muon = options.get("muon_lr")
    if options.get("optimizer") == "muon" and isinstance(muon, int | float) and muon > 0:
        times = muon / USUAL_MUON_LR
        if times >= FAR if high else times <= 1 / FAR:
            evidence.append(
                f"--muon-lr {muon:g} moves each filter bank by {muon:.0%} of its norm per step, "
                f"{max(times, 1 / times):.0f}x {'above' if high else 'below'} the usual {USUAL_MUON_LR:g}"
            )
            fixes.append(f"--muon-lr {USUAL_MUON_LR:g} (its usual value; Muon's lr drives only the other weights)")
    name, lr = options.get("optimizer"), facts.lr_peak
    if high and name in ADAPTIVE and lr and lr >= ADAPTIVE_FAR * DEFAULT_LR[name]:
        evidence.append(
            f"{name} moves each weight by about lr per step whatever its gradient: lr {lr:.2g} is "
            f"{lr / DEFAULT_LR[name]:.0f}x the usual {DEFAULT_LR[name]:g}"
        )
    return evidence, fixes


def _at_chance(facts: Facts) -> bool:
    """Best validation accuracy within 3 standard errors (or 5 points) of guessing, with enough
    validation images to tell."""
    if facts.diverged or facts.best_val_acc is None or facts.chance is None or facts.val_count < 10:
        return False
    noise = 3 * math.sqrt(facts.chance * (1 - facts.chance) / facts.val_count)
    return noise <= 0.2 and facts.best_val_acc <= facts.chance + max(noise, 0.05)


def _flat(facts: Facts) -> bool:
    return facts.loss_drop is not None and facts.loss_drop < FLAT


def _found(found: list[Finding], *causes: str) -> bool:
    return any(f.cause in causes for f in found)


INIT_LOSS = 3  # a first loss this many times ln(C) (and 2 nats above it): the init starts confidently wrong


def _normal_inputs(facts: Facts) -> bool:
    """The input batches look normalized (or were not measured): a huge first loss is then the weights'."""
    if facts.input_mean is None or facts.input_std is None:
        return True
    noise = facts.options.get("input_noise") or 0.0
    std = math.sqrt(max(facts.input_std**2 - noise**2, 0.0))
    return abs(facts.input_mean) <= 0.25 and 0.5 <= std <= 2.0


def chance_loss(facts: Facts) -> tuple[float, str] | None:
    """The loss of an untrained net that scores every class alike, and how it is written ("ln(10) = 2.3";
    "10 - 1 = 9" for the multiclass SVM), for the run's --loss."""
    known = EXPECTED_INITIAL_LOSS.get(str(facts.options.get("loss") or "cross_entropy"))
    if not facts.classes or known is None:
        return None
    value = known[0](facts.classes)
    return value, f"{known[1].format(C=facts.classes)} = {value:.2g}"


def _init_blowup(facts: Facts) -> list[str]:
    evidence = []
    chance = chance_loss(facts)
    expected, written = chance if chance else (None, "")
    first = facts.loss_first
    if (
        expected
        and first is not None
        and first > max(INIT_LOSS * expected, expected + 2)
        and not facts.options.get("reg")  # a penalty in the loss is over_regularized's to read
        and _normal_inputs(facts)
    ):
        evidence.append(
            f"the loss at iteration 1 is {first:.3g} against {written} for an untrained "
            "net that guesses evenly: the initial weights make it confidently wrong"
        )
    if facts.saturated_max is not None and facts.saturated_max >= 0.5:
        evidence.append(
            f"{_pct(facts.saturated_max)} of a tanh/sigmoid layer's outputs are saturated: init std too large"
        )
    if facts.act_shrink is not None and facts.act_shrink > 10:
        evidence.append(
            f"activations grow layer by layer at init (std {facts.act_first_std:.2g} -> {facts.act_last_std:.2g})"
        )
    return evidence


@RULES.register("exploding", order=9)
def exploding(facts: Facts, found: list[Finding]) -> Finding | None:
    """Activations that grow (or saturate) layer by layer from the init: the init's scale is the cause,
    also of a divergence that follows."""
    if _found(found, "over_regularized"):
        return None  # a penalty that dwarfs the data loss, or dropout's 1 / (1 - p), explains a large first loss
    evidence = _init_blowup(facts)
    if facts.grad_nonfinite and not facts.diverged:
        evidence.append("gradient norms became NaN/inf")
    if not evidence:
        return None
    fit = train_fit(facts)
    # a first loss far above ln(C) alone, in a run that fits anyway, is worth a note, not a warning
    only_loss = len(evidence) == 1 and evidence[0].startswith("the loss at iteration 1") and (fit or 0) >= FITS
    tanh = facts.options.get("activation") in ("tanh", "sigmoid") or facts.saturated_max is not None
    return Finding(
        "exploding",
        "fail" if facts.diverged else "info" if only_loss else "warn",
        "exploding or saturated activations: the init's weights are too large",
        "; ".join(evidence) + ("; then the loss diverged" if facts.diverged else ""),
        [
            "--init xavier" if tanh else "--init kaiming",
            "--norm batch (rescales every layer's output)",
            _lr(facts, 0.1),
        ],
    )


PAST_MINIMUM = 0.0  # median alpha above this: steps land beyond the loss's minimum along their direction
USUAL_CARRY = 10  # 1 / (1 - 0.9): the usual momentum's multiplier of the step
HIGH_EFFECTIVE_LR = 20  # lr / (1 - momentum) above this is large even for a BatchNorm net (0.8 / 0.1 = 8)


def _momentum_multiplier(options: dict) -> float | None:
    """1 / (1 - momentum) where it is at least 10x the usual and makes the effective step lr / (1 - momentum)
    large (heavy-ball or Nesterov momentum summed as v = rho * v + g scales the LR's step by that much;
    lr 0.01 at momentum 0.99 is a usual pairing and is not blamed)."""
    rho, lr = options.get("momentum"), options.get("lr")
    if options.get("optimizer") not in ("momentum", "nesterov") or options.get("momentum_convention") == "ema":
        return None
    if not isinstance(rho, int | float) or not 0 <= rho < 1 or 1 / (1 - rho) < 10 * USUAL_CARRY:
        return None
    if isinstance(lr, int | float) and lr / (1 - rho) < HIGH_EFFECTIVE_LR:
        return None
    return 1 / (1 - rho)


def _averaged_window(options: dict) -> float | None:
    """1 / (1 - beta) where an averaged momentum (Adam's beta1, SGD's momentum in the ema form) is at least
    10x the usual window: the step keeps its size but follows the mean of that many past gradients, so it
    keeps going where the gradient has already turned away."""
    rho, name = options.get("momentum"), options.get("optimizer")
    averaged = name in ("adam", "adamw") or (
        name in ("momentum", "nesterov") and options.get("momentum_convention") == "ema"
    )
    if not averaged or not isinstance(rho, int | float) or not 0 <= rho < 1 or 1 / (1 - rho) < 10 * USUAL_CARRY:
        return None
    return 1 / (1 - rho)


@RULES.register("lr_too_high", order=10)
def lr_too_high(facts: Facts, found: list[Finding]) -> Finding | None:
    if _found(found, "exploding", "symmetric_init", "warmup_too_long", "over_regularized"):
        return None
    fixes = [
        f"{_lr(facts, 0.1)} (a tenth; if the loss then falls steadily, the LR was the cause)",
        "--warmup 200",
        "--norm batch",
    ]
    stepped, step_fixes = _step_options(facts, high=True)
    fixes = step_fixes + fixes
    if facts.diverged:
        return Finding(
            "lr_too_high",
            "fail",
            "learning rate too high: the loss exploded",
            (facts.stop_message or "the loss became NaN/inf")
            + (f" at lr {facts.lr_peak:.3g}" if facts.lr_peak else "")
            + "".join(f"; {item}" for item in stepped),
            fixes,
        )
    ratio = facts.update_ratio
    evidence = []
    if ratio is not None and ratio > HEALTHY_UPDATE[1]:
        evidence.append(f"each step changes the weights by {ratio:.2g} of their norm (healthy ~1e-3)")
    chance = chance_loss(facts)
    blown = facts.val_loss_max is not None and chance is not None and facts.val_loss_max > LOSS_BLOWUP * chance[0]
    if blown:
        evidence.append(f"the validation loss reached {facts.val_loss_max:.3g}")
    died = facts.dead_max is not None and facts.dead_max >= 0.5 and (facts.dead_rise or 0.0) >= 0.4
    if died:
        evidence.append(
            f"{_pct(facts.dead_max)} of the units of {facts.dead_layer} died during training "
            f"({_pct(facts.dead_start or 0.0)} at iteration 1): large steps pushed them below zero for good"
        )
    if facts.alpha is not None and facts.alpha > 1:
        evidence.append(
            f"steps overshoot: along each update the loss ends higher than it started (alpha {facts.alpha:.2g})"
        )
    elif facts.alpha is not None and facts.alpha > PAST_MINIMUM:
        evidence.append(
            f"steps overshoot: along each update the loss passes its lowest point (median alpha {facts.alpha:.2g}; "
            "0 lands on it, and healthy runs stop short of it, at -1 to -0.2)"
        )
    evidence += stepped
    carried = _momentum_multiplier(facts.options)
    if carried:
        evidence.append(
            f"--momentum {facts.options['momentum']:g} carries each gradient into ~{carried:.0f} steps "
            f"(1 / (1 - momentum)), {carried / USUAL_CARRY:.0f}x the usual 0.9's {USUAL_CARRY:.0f}"
        )
        fixes = ["--momentum 0.9 (its usual value; the step then matches the LR again)", *fixes[:2]]
    window = _averaged_window(facts.options)
    if window:
        uphill = f"; {facts.uphill:.0%} of the measured steps went uphill" if facts.uphill else ""
        evidence.append(
            f"--momentum {facts.options['momentum']:g} makes each step the mean of the last ~{window:.0f} "
            f"gradients (1 / (1 - momentum)), {window / USUAL_CARRY:.0f}x the usual 0.9's: the steps run on "
            f"where the gradient has turned{uphill}"
        )
        fixes = ["--momentum 0.9 (its usual value; the step then follows the gradient again)", *fixes[:2]]
    spikes = facts.loss_spikes is not None and facts.loss_spikes > 0.05
    if spikes:
        evidence.append(f"{facts.loss_spikes:.0%} of the steps jump the loss above 1.5x its recent median")
    poor = _flat(facts) or (facts.loss_noise or 0) > 0.3 or (facts.train_acc is not None and facts.train_acc < 0.8)
    poor = poor or (bool(stepped) and (train_fit(facts) or 0.0) < FITS)  # the options say why it fits poorly
    # two signs of overshooting at once (steps past 3e-2 of the weights and a spiky loss) in a net that
    # fits < 90%: healthy runs here step at ~1e-2 without spikes
    overshoot = ratio is not None and ratio > HEALTHY_UPDATE[1] and spikes
    poor = poor or (overshoot and (train_fit(facts) or 0.0) < FITS)
    # units that died in a net that still fits its training images cost it nothing worth a warning; where
    # classes are rare in training, the units that would tell them apart die for want of them, whatever the LR
    died = died and (train_fit(facts) or 0.0) < FITS and not rare_classes(facts.train_counts or [])
    if not evidence or not (poor or died) or (len(evidence) == 1 and spikes and not _flat(facts)):
        return None
    if facts.loss_start is not None and facts.loss_end is not None:
        evidence.append(f"training loss {facts.loss_start:.3g} -> {facts.loss_end:.3g}")
    return Finding(
        "lr_too_high",
        "warn",
        "learning rate too high: the steps overshoot without exploding",
        "; ".join(evidence) + (f" at lr {facts.lr_peak:.3g}" if facts.lr_peak else ""),
        fixes,
    )


@RULES.register("dead_units", order=20)
def dead_units(facts: Facts, found: list[Finding]) -> Finding | None:
    if facts.dead_max is None or facts.dead_max < 0.5 or _found(found, "lr_too_high", "symmetric_init"):
        return None
    # a net that fits its training images anyway loses nothing it needs: worth a note, not a warning; nor
    # do units that died during training for want of the classes that are rare in the training split
    fits = (train_fit(facts) or 0.0) >= FITS
    starved = (facts.dead_rise or 0.0) >= 0.4 and bool(rare_classes(facts.train_counts or []))
    return Finding(
        "dead_units",
        "info" if fits or starved else "fail" if facts.dead_max >= 0.9 else "warn",
        "dead ReLUs: most units never fire",
        f"{_pct(facts.dead_max)} of the units of {facts.dead_layer} output zero for a whole batch: "
        "they pass no gradient",
        [
            "--init kaiming (and no large negative biases in a model of your own)",
            "--activation leaky_relu (a small slope below zero keeps units alive)",
            _lr(facts, 0.3),
        ],
    )


@RULES.register("vanishing", order=30)
def vanishing(facts: Facts, found: list[Finding]) -> Finding | None:
    if _found(found, "dead_units", "symmetric_init", "exploding"):
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
    activation = facts.options.get("activation")
    if activation == "sigmoid":
        fixes = ["--activation relu (sigmoid's slope is at most 0.25 per layer)", "--norm batch", "--init xavier"]
    elif activation == "tanh":
        fixes = [
            "--init xavier (std 1/sqrt(fan_in) keeps tanh's activations alive)",
            "--norm batch",
            "--activation relu",
        ]
    else:
        fixes = ["--init kaiming (std sqrt(2/fan_in) for ReLU)", "--norm batch", "--model resnet (skip links)"]
    return Finding(
        "vanishing",
        "fail" if _flat(facts) else "warn",
        "vanishing activations and gradients: the signal dies with depth",
        "; ".join(evidence),
        fixes,
    )


@RULES.register("inputs_not_normalized", order=50)
def inputs_not_normalized(facts: Facts, found: list[Finding]) -> Finding | None:
    if facts.input_mean is None or facts.input_std is None:
        return None
    if _normal_inputs(facts):  # input noise added after normalization counts as std sqrt(1 + noise^2)
        return None
    pretrained = facts.options.get("pretrained")
    if pretrained:  # the weights' statistics are part of the network: its first layer expects them
        return Finding(
            "inputs_not_normalized",
            "info",
            "inputs normalized with the pretrained weights' statistics, not the data's",
            f"the training batches have mean {facts.input_mean:.3g} and std {facts.input_std:.3g} under "
            f"{pretrained}'s ImageNet mean/std, as the pretrained layers were trained to expect",
            [],
        )
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
    if _found(found, "bn_small_batch", "lr_too_high", "over_regularized"):
        return None
    momentum = facts.batchnorm_momentum
    if facts.iterations < MIN_ITERATIONS and (momentum is None or momentum >= 0.01):
        return None  # running statistics a few steps from their init: too_short names the cause
    fixes = []
    if momentum is not None and momentum < 0.01:
        fixes.append(
            f"set the BatchNorm layers' momentum back to 0.1 (it is {momentum:g}: the running statistics barely move)"
        )
    epochs = facts.options.get("epochs")
    fixes += [
        f"--epochs {2 * epochs}" if epochs else "more epochs",
        "--norm group:8 (no running statistics)",
    ]
    if facts.options.get("dropout"):
        fixes.insert(1, "--dropout 0 (or less)")
    return Finding(
        "eval_mismatch",
        "warn",
        "the model behaves differently in evaluation mode: BatchNorm's running statistics do not match training",
        f"the final model gets {_pct(train)} of training images right in train mode "
        f"but {_pct(evaluation)} in eval mode after {facts.iterations} iterations",
        fixes,
    )


def _budget_cut(facts: Facts) -> Finding | None:
    """--time-budget fit fewer epochs than asked and the net is far from fitting its training images."""
    options, planned = facts.options, facts.budget_epochs
    asked, minutes, fit = facts.budget_asked or options.get("epochs"), options.get("time_budget"), train_fit(facts)
    if not (planned and asked and minutes) or planned >= asked or fit is None or fit >= FITS:
        return None
    more = minutes * asked / planned
    return Finding(
        "too_short",
        "warn" if planned <= asked / 2 else "info",
        f"too short: the time budget cut the run to {planned} of {asked} epochs",
        f"--time-budget {minutes:g} minutes fit {planned} of the {asked} epochs asked ({facts.iterations} steps); "
        f"{_pct(fit)} of the training images right",
        [f"--time-budget {more:.2g} (all {asked} epochs at the measured pace)", "--model cnn (a faster net)"],
    )


@RULES.register("too_short", order=70)
def too_short(facts: Facts, found: list[Finding]) -> Finding | None:
    if facts.diverged:
        return None
    if facts.iterations >= MIN_ITERATIONS:
        return _budget_cut(facts)
    fit = train_fit(facts)
    options = facts.options
    fixes = []
    if (options.get("accumulate") or 1) > 1:
        fixes.append(f"--accumulate 1 ({options['accumulate']}x the optimizer steps)")
    batch = options.get("batch_size")
    if batch and facts.train_count and batch * (options.get("accumulate") or 1) * 8 > facts.train_count:
        smaller = 2 ** int(math.log2(max(facts.train_count // 32, 1)))  # ~32 steps an epoch, a power of 2
        fixes.append(f"--batch-size {max(16, min(256, smaller))} (more steps per epoch)")
    fixes.append("more steps: more --epochs or more data (--subset)")
    # a run of more than one epoch that fits poorly; or any run still nearer chance than a full fit
    # (one epoch of a small set: a smoke test that fits well is fine, one that learned little is not)
    poor = fit is not None and fit < FITS and ((options.get("epochs") or 0) > 1 or fit < halfway(facts))
    return Finding(
        "too_short",
        "warn" if poor else "info",
        f"too few optimizer steps to learn: {_pct(fit)} of the training images right"
        if poor
        else "too short to read the curves",
        f"only {facts.iterations} optimizer steps (fewer than {MIN_ITERATIONS})"
        + (f" in {options['epochs']} epochs" if options.get("epochs") else "")
        + ": the curve rules (learning rate, over- and underfitting) were skipped",
        fixes,
    )


@RULES.register("labels_no_signal", order=80, curve=True)
def labels_no_signal(facts: Facts, found: list[Finding]) -> Finding | None:
    """At chance on validation while the training images are being learned (memorized)."""
    if _found(found, *STRUCTURAL) or not _at_chance(facts):
        return None
    fit = train_fit(facts)
    if fit is None or fit < (facts.chance or 0) + 0.1 or fit <= facts.best_val_acc + 0.1:
        return None  # at chance on its own training images too: not learning at all (at_chance)
    return Finding(
        "labels_no_signal",
        "warn",
        "labels look unrelated to the images: the net memorizes the training set and learns nothing general",
        f"validation accuracy stays at chance ({_pct(facts.best_val_acc)} for {facts.classes} classes) "
        f"while {_pct(fit)} of the training images are right",
        ["check that images and labels are shuffled together", "convcoach check (its 1-NN label probe)"],
    )


CLIP_TIGHT = 0.01  # --clip-grad scaling the typical step below this share of the gradient's own
# the LR under 1% of its peak from this share of the run on: the schedule ended it early (cosine and
# one-cycle reach 1% in the last ~6%, a 10x step schedule's second cut at 3 of 4 epochs stays at 1%)
LR_GONE_BY = 0.6


def _clipped_away(facts: Facts) -> Finding | None:
    """--clip-grad far below the gradient's usual norm: every step is scaled down, as by a tiny LR."""
    if facts.clip_scale is None or facts.clip_scale > CLIP_TIGHT or facts.clip_norm is None:
        return None
    loose = 10 ** math.ceil(math.log10(max(facts.clip_norm, 1e-12)))
    return Finding(
        "lr_too_low",
        "warn",
        "steps too small: gradient clipping scales every step down",
        f"--clip-grad {facts.options.get('clip_grad'):g} against a median gradient norm of {facts.clip_norm:.3g}: "
        f"each step is {1 / facts.clip_scale:.0f}x smaller than the LR asks; "
        f"loss {facts.loss_start:.3g} -> {facts.loss_end:.3g} ({facts.loss_drop:.1%})",
        [
            f"--clip-grad {loose:g} (above the usual norm: clipping then only catches spikes)",
            "no --clip-grad",
        ],
    )


def _schedule_ended(facts: Facts) -> Finding | None:
    """The schedule drove the LR to ~0 early and the net stopped short of fitting its training set."""
    fit = train_fit(facts)
    gone = facts.lr_low_from
    if gone is None or gone > LR_GONE_BY or fit is None or fit >= FITS or (facts.late_drop or 0) > FLAT:
        return None
    schedule = facts.options.get("schedule")
    return Finding(
        "lr_too_low",
        "warn",
        "learning rate too low for much of the run: the schedule decays it too early",
        f"the LR fell under 1% of its peak {_pct(gone)} into the run (--schedule {schedule}) and stayed there; "
        f"the last third cut the loss by only {(facts.late_drop or 0):.1%} of its start, "
        f"with {_pct(fit)} of the training images right",
        ["--schedule onecycle (anneals to ~0 only at the end)", "--schedule cosine"],
    )


STILL_UPDATE = HEALTHY_UPDATE[0] / 10  # a median step this far below the healthy size: most weights stand still


def _most_weights_still(facts: Facts) -> Finding | None:
    """Most layers' steps are far too small (the median over layers) while the net falls short of fitting
    its training set and has stopped improving: the loss fell only because a few layers (a head on a
    larger LR, say) learned. Flat and at-chance runs are read by the rule's other branches."""
    ratio, fit = facts.update_ratio, train_fit(facts)
    if ratio is None or ratio >= STILL_UPDATE or fit is None or fit >= FITS or _flat(facts):
        return None
    if facts.late_drop is None or facts.late_drop >= FLAT or facts.loss_drop is None:
        return None  # still falling: too early to call
    stepped, step_fixes = _step_options(facts, high=False)
    return Finding(
        "lr_too_low",
        "warn",
        "learning rate too low for most layers: their weights barely move",
        f"each step changes the median layer's weights by {ratio:.1e} of their norm (healthy ~1e-3), "
        f"and the net gets only {_pct(fit)} of its training images right; the loss fell "
        f"{facts.loss_drop:.1%} over the run, {facts.late_drop:.1%} in the last third, through the few "
        "layers that move" + "".join(f"; {item}" for item in stepped),
        [*step_fixes, f"{_lr(facts, 10)} (10x; convcoach check sweeps the range)"],
    )


SHORT_STEP = -0.98  # median alpha at or below: each step covers under 2% of the way to the minimum ahead
TYPICAL_UPDATE = 1e-3  # the update/weight ratio healthy runs step at (cs231n)


def _short_steps(facts: Facts) -> Finding | None:
    """Steps below the usual size that each cover almost none of the way to the minimum along their own
    direction (Cockpit's alpha near -1), in a net that fits under halfway from chance and has stopped
    improving: the LR holds it back, not its capacity (a net too small steps at the usual size)."""
    ratio, fit, alpha = facts.update_ratio, train_fit(facts), facts.alpha
    if ratio is None or alpha is None or fit is None or facts.late_drop is None or facts.loss_drop is None:
        return None
    if fit >= halfway(facts) or facts.late_drop >= FLAT or ratio >= TYPICAL_UPDATE or alpha > SHORT_STEP:
        return None
    stepped, step_fixes = _step_options(facts, high=False)
    return Finding(
        "lr_too_low",
        "warn",
        "learning rate too low: each step covers almost none of the way down",
        f"each step changes the weights by {ratio:.1e} of their norm (healthy ~1e-3) and goes "
        f"{1 + alpha:.0%} of the way to the lowest loss along its own direction (median alpha {alpha:.3g}; "
        f"-1 is no move, 0 lands on the minimum); the net gets only {_pct(fit)} of its training images right "
        f"and the loss fell {facts.late_drop:.1%} in the last third" + "".join(f"; {item}" for item in stepped),
        [*step_fixes, f"{_lr(facts, 10)} (10x; convcoach check sweeps the range)", "--lr auto"],
    )


@RULES.register("lr_too_low", order=90, curve=True)
def lr_too_low(facts: Facts, found: list[Finding]) -> Finding | None:
    if facts.diverged or _found(found, *STRUCTURAL):
        return None
    if (_flat(facts) or _at_chance(facts)) and (clipped := _clipped_away(facts)):
        return clipped
    if ended := _schedule_ended(facts):
        return ended
    if frozen := _most_weights_still(facts):
        return frozen
    if short := _short_steps(facts):
        return short
    ratio = facts.update_ratio
    # a loss that barely moves; or one that moves little (under 3x FLAT) while the net is still at
    # chance and its steps are below the healthy size
    slow = facts.loss_drop is not None and facts.loss_drop < 3 * FLAT and ratio is not None
    if not (_flat(facts) or (slow and ratio < HEALTHY_UPDATE[0] and _at_chance(facts))):
        return None
    if facts.loss_drop is not None and facts.loss_drop < -FLAT:
        return None  # a rising loss is not a too-small step
    if ratio is not None and ratio >= HEALTHY_UPDATE[0]:
        return None
    updates = (
        f"; each step changes the weights by {ratio:.1e} of their norm (healthy ~1e-3)" if ratio is not None else ""
    )
    stepped, step_fixes = _step_options(facts, high=False)
    return Finding(
        "lr_too_low",
        "warn",
        "learning rate too low: the loss barely moves",
        f"loss {facts.loss_start:.3g} -> {facts.loss_end:.3g} over {facts.iterations} iterations "
        f"({facts.loss_drop:.1%}){updates}" + "".join(f"; {item}" for item in stepped),
        [
            *step_fixes,
            f"{_lr(facts, 10)} (10x; convcoach check sweeps the range)",
            "--lr auto (a sweep picks it before training)",
        ],
    )


def _remaining_gain(vals: list[float]) -> float:
    """Validation accuracy still to come if each epoch's gain keeps shrinking as the last two did."""
    last = vals[-1] - vals[-2]
    if len(vals) >= 3 and vals[-2] - vals[-3] > last > 0:
        ratio = min(last / (vals[-2] - vals[-3]), 0.8)
        gain = last * ratio / (1 - ratio)
    else:
        gain = last  # not slowing yet: at least one more epoch like the last
    return min(gain, 0.5 * (1 - vals[-1]))


def _stopped_too_soon(facts: Facts) -> Finding | None:
    """Early stopping (--patience) ended the run before its planned epochs while validation was still
    at its best (the last epoch's gain fell under --min-delta) or the LR schedule had not yet decayed."""
    options, vals = facts.options, facts.val_accs
    patience, planned = options.get("patience"), options.get("epochs")
    if not patience or "has not improved" not in (facts.stop_message or "") or len(vals) < 2:
        return None
    if planned and len(vals) >= planned:
        return None
    at_best = vals[-1] >= max(vals[:-1])
    if not (at_best or facts.lr_held) or (train_fit(facts) or 0.0) >= 0.98:
        return None
    delta = options.get("min_delta") or 0.0
    if at_best and delta:
        why = f"its last epoch gained {100 * (vals[-1] - vals[-2]):.1f} points, under --min-delta {delta:g}"
    elif facts.lr_held:
        why = "the LR was still at least half its peak: the schedule had not decayed it"
    else:
        why = "its last epoch matched its best"
    fixes = [f"--patience {max(5, 3 * patience)} (early stopping waits longer)"]
    if at_best and delta:
        fixes.insert(0, "--min-delta 0 (any gain counts)")
    return Finding(
        "not_converged",
        "warn",
        "not converged: early stopping ended the run while it still improved",
        f"--patience {patience} stopped it after epoch {len(vals)}"
        + (f" of {planned}" if planned else "")
        + f" at validation {_pct(vals[-1])}; {why}",
        fixes,
    )


@RULES.register("not_converged", order=95, curve=True)
def not_converged(facts: Facts, found: list[Finding]) -> Finding | None:
    """Still improving fast when it stopped: more epochs would pay."""
    vals = facts.val_accs
    if not _found(found, *STRUCTURAL) and (stopped := _stopped_too_soon(facts)):
        return stopped
    if _found(found, *STRUCTURAL) or len(vals) < 2 or vals[-1] - vals[-2] < STILL_RISING:
        return None
    if (facts.train_acc or 0) >= 0.98 or facts.val_loss_stalled:
        return None
    if facts.late_drop is not None and facts.loss_drop and facts.late_drop / facts.loss_drop < STILL_FALLING:
        return None  # the training loss has flattened: the last epoch's gain was the schedule's annealing
    epochs = facts.options.get("epochs") or len(vals)
    fast = vals[-1] - vals[-2] >= 2 * STILL_RISING
    return Finding(
        "not_converged",
        "warn" if facts.lr_held or fast else "info",
        "not converged: still improving when training stopped",
        f"validation accuracy rose {100 * (vals[-1] - vals[-2]):.1f} points in the last epoch, to {_pct(vals[-1])}; "
        f"from the curve, about {100 * _remaining_gain(vals):.0f} more points are to come",
        [
            f"--epochs {2 * epochs} (twice as long)",
            f"convcoach train --resume RUN --epochs {2 * epochs} (continues this run)",
        ],
    )


def _overfit_fixes(facts: Facts) -> list[str]:
    options = facts.options
    fixes = []
    if list(options.get("augment") or ["none"]) in (["none"], []):
        fixes.append("--augment hflip,translate:2 (more variety per image)")
    else:
        fixes.append("--augment hflip,translate:2,randaugment:2:9 (stronger augmentation)")
    if (options.get("weight_decay") or 0) < 5e-4:
        fixes.append("--weight-decay 5e-4")
    if not options.get("dropout"):
        fixes.append("--dropout 0.3")
    fixes += ["--patience 5 (early stopping keeps the best epoch)", "more training images"]
    return fixes


@RULES.register("overfitting", order=100, curve=True)
def overfitting(facts: Facts, found: list[Finding]) -> Finding | None:
    if facts.gap is None or facts.gap < 0.1 or _found(found, *STRUCTURAL):
        return None
    train = train_fit(facts)
    # a growing gap counts once the training set is memorized or the validation loss stopped falling
    # (early in training the running training accuracy lags behind)
    settled = bool(facts.val_loss_stalled) or (train or 0.0) >= 0.98
    growing = facts.gap_growth is not None and facts.gap_growth >= 0.05 and settled
    rising = facts.val_loss_rise is not None and facts.val_loss_rise >= 0.1
    if not (growing or rising):
        return None
    vals = facts.val_accs
    # memorized, yet validation still gains and its loss is at its lowest: a gap to watch, not yet harm
    improving = (
        not rising
        and not facts.val_loss_stalled
        and len(vals) >= 2
        and vals[-1] - vals[-2] >= STILL_RISING / 2
        and facts.val_loss_min_epoch == len(vals)
    )
    evidence = (
        f"training accuracy {_pct(train or 0)} vs validation {_pct(facts.val_acc or 0)} "
        f"(gap {facts.gap * 100:.0f} points"
    )
    evidence += f", {facts.gap_growth * 100:.0f} more than at epoch {facts.gap_min_epoch})" if growing else ")"
    if rising:
        evidence += f"; validation loss up {_pct(facts.val_loss_rise)} since epoch {facts.val_loss_min_epoch}"
    if improving:
        evidence += f"; validation still rose {100 * (vals[-1] - vals[-2]):.1f} points in the last epoch"
    return Finding(
        "overfitting",
        "info" if improving else "warn",
        f"overfitting: the net memorizes its {facts.train_count or ''} training images".replace("  ", " "),
        evidence,
        _overfit_fixes(facts),
    )


@RULES.register("plateau", order=110, curve=True)
def plateau(facts: Facts, found: list[Finding]) -> Finding | None:
    """The loss flattened at a learning rate that was never decayed: a decay takes it lower (lecture 006)."""
    if any(f.severity != "info" for f in found) or facts.late_drop is None or facts.loss_drop is None:
        return None
    if facts.loss_drop < 0.2 or not facts.lr_held or (facts.train_acc or 0) >= 0.98:
        return None
    share = facts.late_drop / facts.loss_drop  # of the run's whole drop, what the last third added
    schedule = facts.options.get("schedule")
    if share >= PLATEAU_SHARE or (schedule != "constant" and facts.late_drop >= 0.01):
        return None  # a schedule that has not decayed yet: only a loss that has stopped altogether
    return Finding(
        "plateau",
        "warn" if schedule == "constant" else "info",
        "plateau: the loss has flattened at a learning rate that was never decayed",
        f"the last third of the run added {share:.0%} of the loss's whole drop ({facts.loss_drop:.0%}), "
        "the LR at the end at least half its peak" + (f" (--schedule {schedule})" if schedule else ""),
        ["--schedule cosine (decays to zero by the last epoch)", "--schedule onecycle", "--schedule step:E1,E2"],
    )


@RULES.register("underfitting", order=120, curve=True)
def underfitting(facts: Facts, found: list[Finding]) -> Finding | None:
    """High training error once the loss has slowed down (while it still falls fast, it is too early to tell)."""
    fit, shrunk = train_fit(facts), _shrunk(facts)
    # images shrunk to a few pixels hold the net back below the usual fit, not only below 80%
    if any(f.severity != "info" for f in found) or fit is None or fit >= (FITS if shrunk else 0.8) or _flat(facts):
        return None
    if weight_skew(facts.options, facts.train_counts, list(facts.test_per_class or {})):
        return None  # a loss weighted to favor some classes trades accuracy away: classes_missed reads it
    if facts.late_drop is None or facts.late_drop >= (2 if shrunk else 1) * 0.05:
        return None
    options = facts.options
    width = options.get("width")
    hardest = _hardest_lost(facts)
    lost = (
        f"; the images were resized from {facts.source_side} to {facts.image_side} px, which leaves "
        f"{(facts.image_side / facts.source_side) ** 2:.0%} of their pixels: "
        "detail that tells the classes apart is gone"
        if shrunk
        else ""
    )
    return Finding(
        "underfitting",
        # less than halfway from chance to every training image right is far off; above it, a note
        "warn" if fit < halfway(facts) or shrunk or hardest else "info",
        "underfitting: the net is too small or too short to fit its training set",
        f"training accuracy only {_pct(fit)}"
        + (f" (validation {_pct(facts.val_acc)})" if facts.val_acc is not None else "")
        + f" and the loss fell only {facts.late_drop:.1%} over the last third"
        + hardest
        + lost,
        [
            *([f"--image-size {facts.source_side} (the images' own size)"] if shrunk else []),
            *_regularizers_off(options),
            f"--width {2 * width}" if width else "--width 64 (more channels)",
            "--model resnet (deeper, with skip links)",
            "--norm batch",
            f"--epochs {2 * options['epochs']}" if options.get("epochs") else "more epochs",
        ],
    )


MISSED_CLASS = 0.1  # a class below this test accuracy is (almost) never predicted right


def classes_judged(facts: Facts) -> bool:
    """Per-class test accuracies worth reading: a model that learned overall (20 points past chance),
    tested on enough images to tell (10 a class)."""
    per_class, overall = facts.test_per_class, facts.test_acc
    if not per_class or overall is None or facts.chance is None or overall < facts.chance + 0.2:
        return False
    return facts.test_count >= 10 * len(per_class)


def missed_classes(facts: Facts) -> list[tuple[str, float]]:
    """(class, test accuracy) of the classes under MISSED_CLASS, worst first, where classes_judged."""
    if not classes_judged(facts):
        return []
    per_class = facts.test_per_class or {}
    return sorted(((name, acc) for name, acc in per_class.items() if acc < MISSED_CLASS), key=lambda item: item[1])


def _hardest_lost(facts: Facts) -> str:
    """Words for whole classes a net that underfits never gets right though every class is about equally
    common in training and the loss weighs them alike ("" otherwise): the hardest classes go first."""
    counts = facts.train_counts or []
    if not counts or rare_classes(counts) or weight_skew(facts.options, counts, list(facts.test_per_class or {})):
        return ""
    missed = missed_classes(facts)
    if not missed:
        return ""
    val = facts.val_per_class or {}
    listed = ", ".join(
        f"{name} {_pct(acc)} on test" + (f", {_pct(val[name])} on validation" if name in val else "")
        for name, acc in missed
    )
    return f"; it never gets whole classes right ({listed}), though training holds as many of them as of the rest"


SMALL_IMAGES = 32  # px: resized below this side (and to half the stored one or less), detail is lost


def _shrunk(facts: Facts) -> bool:
    """The run resized its images to half their stored side or less, and under SMALL_IMAGES px
    (a photo folder resized from 500 to 64 px keeps what a classifier needs; Fashion-MNIST at 8 px does not)."""
    side, stored = facts.image_side, facts.source_side
    return bool(side and stored and 2 * side <= stored and side < SMALL_IMAGES)


MIXING = ("mixup", "cutmix", "dropout", "dropconnect", "stochastic_depth")


def _regularizers_off(options: dict) -> list[str]:
    """A net that cannot fit its training images needs no regularizer: each mixing or dropping option
    that is on, off (the lectures: reduce regularization before anything else when training error is high)."""
    on = [name for name in MIXING if isinstance(options.get(name), int | float) and options[name] > 0]
    return [f"--{name.replace('_', '-')} 0 (a net that underfits needs no regularizer)" for name in on]


@RULES.register("at_chance", order=130, curve=True)
def at_chance(facts: Facts, found: list[Finding]) -> Finding | None:
    """The last word: no rule found a cause, yet the model scores no better than guessing."""
    if any(f.severity != "info" for f in found) or not _at_chance(facts):
        return None
    fit = train_fit(facts)
    on_train = f"; {_pct(fit)} on its own training images" if fit is not None else ""
    return Finding(
        "at_chance",
        "warn",
        "not learning at all: validation accuracy is at chance",
        f"best validation accuracy {_pct(facts.best_val_acc)} for {facts.classes} classes "
        f"(chance {_pct(facts.chance)}) after {facts.iterations} iterations{on_train}",
        [
            "convcoach check (its LR sweep and overfit test find what is broken)",
            _lr(facts, 0.1),
            "--lr auto",
        ],
    )


@RULES.register("checks_flagged", order=140)
def checks_flagged(facts: Facts, found: list[Finding]) -> Finding | None:
    """What `convcoach check --out RUN_DIR` flagged before this run, beside what the run itself showed."""
    flagged = facts.checks_flagged
    if not flagged:
        return None
    listed = "; ".join(f"{r.get('name')} ({r.get('status')}): {r.get('message')}" for r in flagged[:3])
    return Finding(
        "checks_flagged",
        "info",
        f"convcoach check flagged {len(flagged)} problem(s) before training",
        listed,
        [str(r["fix"]) for r in flagged if r.get("fix")],
    )
