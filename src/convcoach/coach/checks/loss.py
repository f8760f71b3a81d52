"""Checks 1-2: the loss at init is what chance predicts (ln C for softmax, C - 1 for the SVM), and
turning regularization up raises it (lecture 004, "double check that the loss is reasonable").

Both measure the fresh model as training runs it (BatchNorm on batch statistics) but with dropout,
DropConnect and stochastic depth switched off: their train-mode rescaling (x10 at --dropout 0.9) is
noise that the first steps do not keep, not a property of the init."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from ...models.dropconnect import DropConnectLinear
from ...registry import parse_spec
from ...train.regularizers import Penalty, parse_reg, penalized_parameters
from ..advice import EXPECTED_INITIAL_LOSS
from ..check_report import CheckResult
from ..context import CheckContext
from . import CHECKS
from .dataset import MEAN_TOLERANCE, STD_RANGE

# |loss - expected| allowed: relative + absolute, since a few classes give a small ln(C) that
# He-initialized scores (std ~1) move by a few tenths without any bug
PASS_TOLERANCE, WARN_TOLERANCE = (0.15, 0.25), (1.0, 0.0)  # warn up to twice the expected loss
GROWTH = 5.0  # rms into the last layer / rms of the input above this: the hidden layers amplify (stats.GROW_WARN)
DROPOUT_TYPES = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
    DropConnectLinear,
)
FIXED_SCALE_INITS = ("normal", "constant", "zeros")  # a scale chosen by hand, not from each layer's fan-in


def _stochastic(module: nn.Module) -> bool:
    """Dropout-like in training only: dropout, DropConnect, or stochastic depth (a positive `drop_prob`,
    as on ResNet's blocks; the module's own flag is switched, so its BatchNorm children keep theirs)."""
    drop = getattr(module, "drop_prob", 0.0)
    return isinstance(module, DROPOUT_TYPES) or (isinstance(drop, (int, float)) and drop > 0)


@contextmanager
def without_dropout(model: nn.Module) -> Iterator[list[str]]:
    """Switch dropout, DropConnect and stochastic depth to their eval behaviour for the duration, every
    other module (BatchNorm) keeping its mode; yields the names of the modules switched."""
    switched = [(name, module) for name, module in model.named_modules() if module.training and _stochastic(module)]
    for _, module in switched:
        module.training = False
    try:
        yield [name for name, _ in switched]
    finally:
        for _, module in switched:
            module.training = True


def channel_moments(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of an image batch (N, C, H, W), or per-feature-set for flat inputs."""
    dims = (0, 2, 3) if x.dim() == 4 else (0,)
    flat = x.float()
    mean, std = flat.mean(dim=dims), flat.std(dim=dims)
    if x.dim() != 4:
        mean, std = mean.mean().reshape(1), std.mean().reshape(1)
    return mean.tolist(), std.tolist()


def inputs_normalized(mean: list[float], std: list[float]) -> bool:
    """What the data check passes: per-channel mean within 0.2 of 0, std within 0.5..2."""
    return all(abs(m) <= MEAN_TOLERANCE for m in mean) and all(STD_RANGE[0] <= s <= STD_RANGE[1] for s in std)


@dataclass
class InitForward:
    """The fresh model's loss on one batch, and the figures that say why it is off: the inputs' moments,
    the spread of the scores across classes, and the rms of what enters the last conv/linear layer."""

    loss: float
    score_std: float
    input_mean: list[float]
    input_std: list[float]
    input_rms: float
    last_layer: str | None = None
    last_input_rms: float | None = None
    switched_off: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, object]:
        return {
            "score_std": self.score_std,
            "input_mean": self.input_mean,
            "input_std": self.input_std,
            "input_rms": self.input_rms,
            "last_layer": self.last_layer,
            "last_input_rms": self.last_input_rms,
            "dropout_off": self.switched_off,
        }


def _rms(x: torch.Tensor) -> float:
    return x.detach().float().square().mean().sqrt().item()


@torch.no_grad()
def forward_at_init(context: CheckContext, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> InitForward:
    """`model` on (x, y) in its training mode with dropout-like layers off, read layer by layer."""
    seen: list[tuple[str, float]] = []  # (name, rms of its input) per conv/linear layer, in the order they ran

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor, name: str) -> None:
        seen.append((name, _rms(inputs[0])))  # read now: an in-place op may overwrite the input later

    handles = [
        m.register_forward_hook(lambda mod, inp, out, n=name: hook(mod, inp, out, n))
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    try:
        with without_dropout(model) as switched:
            scores = model(x)
    finally:
        for handle in handles:
            handle.remove()
    mean, std = channel_moments(x)
    spread = scores.float().std(dim=1).mean().item() if scores.dim() == 2 and scores.shape[1] > 1 else float("nan")
    last_layer, last_input_rms = seen[-1] if seen else (None, None)
    return InitForward(
        loss=context.loss_fn(scores, y).item(),
        score_std=spread,
        input_mean=mean,
        input_std=std,
        input_rms=_rms(x),
        last_layer=last_layer,
        last_input_rms=last_input_rms,
        switched_off=switched,
    )


def _initial_loss(context: CheckContext) -> InitForward:
    model = context.fresh_model()
    x, y = context.batch(context.budget.loss_batch)
    return forward_at_init(context, model, x, y)


def _fmt(values: list[float]) -> str:
    return "/".join(f"{v:.2g}" for v in values)


def input_cause(context: CheckContext, mean: list[float], std: list[float]) -> str | None:
    """Why the inputs are off, with their figures, and the fix the run does not already have; None when normalized."""
    if inputs_normalized(mean, std):
        return None
    what = f"the inputs are not normalized (per-channel mean {_fmt(mean)}, std {_fmt(std)})"
    if context.config.preprocess != "meanstd":
        return f"{what}: use --preprocess meanstd"
    return f"{what} although --preprocess is meanstd: check the normalizer given to the run"


def _nonstandard_init(context: CheckContext) -> bool:
    """A registry model initialized at a hand-picked scale (e.g. --init normal:0.3), not from each layer's fan-in."""
    return not context.custom and parse_spec(context.config.init)[0] in FIXED_SCALE_INITS


def init_fix(context: CheckContext, direction: str = "lower") -> str:
    """The init options to try, leaving out those the run already uses; `direction` (lower or raise) is
    what to do to the init std where no option is left."""
    if context.custom:
        return f"{direction} the init std of the hidden layers"
    options = []
    if _nonstandard_init(context):
        options.append("--init auto (kaiming for ReLU, xavier for tanh)")
    if context.config.norm == "none":
        options.append("--norm batch")
    return (
        "use " + " or ".join(options) if options else f"{direction} the init std of the hidden layers (see activations)"
    )


def _too_large_fix(context: CheckContext, measured: InitForward) -> str:
    """Scores too large at init: the causes the figures support, upstream first."""
    causes = []
    if inputs := input_cause(context, measured.input_mean, measured.input_std):
        causes.append(inputs)
    last_rms, name = measured.last_input_rms, measured.last_layer
    if last_rms is not None and last_rms > GROWTH * max(measured.input_rms, 1e-12):
        causes.append(
            f"activations grow through the net (rms {measured.input_rms:.2g} at the input, {last_rms:.2g} into "
            f"the last layer '{name}'): {init_fix(context)}"
        )
    if not causes:
        if name is not None and last_rms:
            gain = measured.score_std / last_rms
            if _nonstandard_init(context):
                fix = f"--init {context.config.init} sets it: use --init auto (kaiming for ReLU, xavier for tanh)"
            else:
                fix = "its initial weights are too large for a chance-level start: scale them down or start them at 0"
            causes.append(
                f"the last layer '{name}' turns inputs of rms {last_rms:.2g} into scores {gain:.2g}x as large; {fix}"
            )
        else:
            causes.append("lower the init scale of the layer that produces the scores")
    return f"scores at init are too large (std {measured.score_std:.2g} across classes): " + "; ".join(causes)


@CHECKS.register("initial_loss")
def initial_loss(context: CheckContext) -> list[CheckResult]:
    name, classes = context.config.loss, context.num_classes
    if name not in EXPECTED_INITIAL_LOSS:
        return [CheckResult("initial_loss", "skip", f"no expected initial value known for loss '{name}'")]
    expected_fn, formula = EXPECTED_INITIAL_LOSS[name]
    expected = expected_fn(classes)
    measured = _initial_loss(context)
    loss = measured.loss
    label = f"{formula.format(C=classes)} = {expected:.3g}"
    details = {"loss": loss, "expected": expected, "classes": classes, "loss_name": name, **measured.figures()}
    if not math.isfinite(loss):
        finite = all(math.isfinite(v) for v in measured.input_mean + measured.input_std)
        return [
            CheckResult(
                "initial_loss",
                "fail",
                f"initial loss is {loss} (expected {label})",
                "the inputs contain NaN/inf: clean the images"
                if not finite
                else f"the scores overflow at init on finite inputs: {init_fix(context)}",
                details,
            )
        ]
    distance = abs(loss - expected)
    details["relative_distance"] = distance / expected
    off = "regularization and dropout" if measured.switched_off else "regularization"
    message = f"initial loss {loss:.3g} with {off} off, expected {label} for {classes} classes"
    if distance <= PASS_TOLERANCE[0] * expected + PASS_TOLERANCE[1]:
        return [CheckResult("initial_loss", "pass", message, "", details)]
    status = "warn" if distance <= WARN_TOLERANCE[0] * expected + WARN_TOLERANCE[1] else "fail"
    if loss > expected:
        fix = _too_large_fix(context, measured)
    else:
        fix = (
            "the model is confident before training: check that labels do not leak into the inputs "
            "and that every class is present"
        )
    return [CheckResult("initial_loss", status, message + f" ({distance / expected:.0%} off)", fix, details)]


@CHECKS.register("regularization")
def regularization(context: CheckContext) -> list[CheckResult]:
    """Data loss alone, then + lambda R(W) at the configured lambda and cranked up: the loss must rise."""
    config = context.config
    configured = parse_reg(config.reg)
    penalty = configured or Penalty("l2", 0.0)
    model = context.fresh_model()
    params = penalized_parameters(model, config.reg_all)
    if not params:
        return [
            CheckResult(
                "regularization",
                "fail",
                "the model has no conv/linear weights for the penalty to act on",
                "use --reg-all to penalize every parameter, or a model with conv/linear layers",
            )
        ]
    x, y = context.batch(context.budget.loss_batch)
    data_loss = forward_at_init(context, model, x, y).loss  # as initial_loss measures it: dropout off
    with torch.no_grad():
        unit = Penalty(penalty.kind, 1.0, penalty.beta)(params).item()  # R(W)
    if unit <= 0:
        return [
            CheckResult(
                "regularization",
                "fail",
                f"R(W) = {unit:.3g} at init: the penalty cannot raise the loss",
                "the weights are all zero: pick a random init (--init auto)",
            )
        ]
    cranked = max(penalty.strength * 1000, data_loss / unit)  # "crank up regularization" (lecture 004)
    with torch.no_grad():
        raised = data_loss + Penalty(penalty.kind, cranked, penalty.beta)(params).item()
        at_config = data_loss + penalty(params).item()
    details = {
        "data_loss": data_loss,
        "kind": penalty.kind,
        "configured_lambda": penalty.strength,
        "loss_at_configured": at_config,
        "cranked_lambda": cranked,
        "loss_cranked": raised,
    }
    what = f"{penalty.kind}:{cranked:.2g}"
    if not raised > data_loss:
        return [
            CheckResult(
                "regularization",
                "fail",
                f"loss did not rise with {what} ({data_loss:.3g} -> {raised:.3g})",
                "the penalty is not added to the loss",
                details,
            )
        ]
    message = f"loss rises with {what}: {data_loss:.3g} -> {raised:.3g}"
    if configured is not None and at_config - data_loss > data_loss:
        return [
            CheckResult(
                "regularization",
                "warn",
                message
                + f"; the configured {config.reg} alone adds {at_config - data_loss:.3g}, more than the data loss",
                "the penalty dominates at init: lower lambda (the lectures search it on a log scale)",
                details,
            )
        ]
    return [CheckResult("regularization", "pass", message, "", details)]
