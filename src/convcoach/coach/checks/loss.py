"""Checks 1-2: the loss at init is what chance predicts (ln C for softmax, C - 1 for the SVM), and
turning regularization up raises it (lecture 004, "double check that the loss is reasonable")."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ...train.regularizers import Penalty, parse_reg, penalized_parameters
from ..check_report import CheckResult
from ..context import CheckContext
from . import CHECKS

# loss name -> (expected initial loss for C classes, how it is written)
EXPECTED_INITIAL_LOSS: dict[str, tuple[Callable[[int], float], str]] = {
    "cross_entropy": (math.log, "ln({C})"),
    "softmax": (math.log, "ln({C})"),
    "kl": (math.log, "ln({C})"),
    "svm": (lambda c: c - 1.0, "{C} - 1"),  # every margin is ~1 when all scores are ~0
    "hinge": (lambda c: c - 1.0, "{C} - 1"),
}
# |loss - expected| allowed: relative + absolute, since a few classes give a small ln(C) that
# He-initialized scores (std ~1) move by a few tenths without any bug
PASS_TOLERANCE, WARN_TOLERANCE = (0.15, 0.25), (1.0, 0.0)  # warn up to twice the expected loss


def _initial_loss(context: CheckContext) -> float:
    model = context.fresh_model()
    x, y = context.batch(context.budget.loss_batch)
    with torch.no_grad():
        return context.loss_fn(model(x), y).item()


@CHECKS.register("initial_loss")
def initial_loss(context: CheckContext) -> list[CheckResult]:
    name, classes = context.config.loss, context.num_classes
    if name not in EXPECTED_INITIAL_LOSS:
        return [CheckResult("initial_loss", "skip", f"no expected initial value known for loss '{name}'")]
    expected_fn, formula = EXPECTED_INITIAL_LOSS[name]
    expected = expected_fn(classes)
    loss = _initial_loss(context)
    label = f"{formula.format(C=classes)} = {expected:.3g}"
    details = {"loss": loss, "expected": expected, "classes": classes, "loss_name": name}
    if not math.isfinite(loss):
        return [
            CheckResult(
                "initial_loss",
                "fail",
                f"initial loss is {loss} (expected {label})",
                "look for NaN/inf in the inputs; lower the init std",
                details,
            )
        ]
    distance = abs(loss - expected)
    details["relative_distance"] = distance / expected
    message = f"initial loss {loss:.3g} with regularization off, expected {label} for {classes} classes"
    if distance <= PASS_TOLERANCE[0] * expected + PASS_TOLERANCE[1]:
        return [CheckResult("initial_loss", "pass", message, "", details)]
    status = "warn" if distance <= WARN_TOLERANCE[0] * expected + WARN_TOLERANCE[1] else "fail"
    if loss > expected:
        fix = (
            "scores at init are too large: normalize the inputs (--preprocess meanstd) "
            "or lower the init std of the last layer"
        )
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
    with torch.no_grad():
        data_loss = context.loss_fn(model(x), y).item()
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
