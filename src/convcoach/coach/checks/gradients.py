"""Check 5: backprop's gradients against centred differences (f(w + h) - f(w - h)) / 2h on a narrow
float64 copy of the model, a few sampled entries per parameter tensor (cs231n's gradient check)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..check_report import CheckResult
from ..context import CheckContext
from . import CHECKS

STEP = 1e-6  # small enough to cross few ReLU/max-pool kinks; float64 rounding stays ~1e-9
PASS_ERROR, WARN_ERROR = 1e-4, 1e-2  # cs231n: above 1e-2 is wrong; below 1e-4 fine even with kinks
# float64 rounding in (f(w+h) - f(w-h)) / 2h is ~2e-10 |f| with h = 1e-6: gradients below this floor
# (relative to |f|) are compared as absolute differences, so an exact zero does not fail against noise
ABS_FLOOR = 1e-5
KINK = 1e-3  # one-sided differences disagreeing by more than this straddle a kink
JITTER = 0.01  # moves zero-initialized biases and norm weights off ReLU kinks and dead paths


def relative_error(analytic: float, numeric: float, scale: float = 1.0) -> float:
    """|a - n| / max(|a|, |n|), with a floor (ABS_FLOOR x max(1, |f|)) so that two numerically zero gradients agree."""
    return abs(analytic - numeric) / max(abs(analytic), abs(numeric), ABS_FLOOR * max(1.0, abs(scale)))


def gradient_check(model: nn.Module, x: torch.Tensor, entries: int = 3, seed: int = 0) -> dict[str, dict[str, float]]:
    """Worst relative error per parameter tensor of L = sum(r * model(x)) for a fixed random r.

    A random projection of the scores exercises every layer's backward in float64 (the losses cast
    scores to float32, which would drown the comparison in rounding). Parameters get a small random
    jitter first: zero biases put ReLUs exactly on their kink, where the two sides disagree. An entry
    whose one-sided differences still disagree straddles a kink and is not scored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # hundreds of tiny float64 passes: threads cost more than they give
    try:
        return _check(model, x, entries, seed)
    finally:
        torch.set_num_threads(threads)


def _check(model: nn.Module, x: torch.Tensor, entries: int, seed: int) -> dict[str, dict[str, float]]:
    generator = torch.Generator().manual_seed(seed)
    model = model.double()
    x = x.double()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(JITTER * torch.randn(param.shape, generator=generator, dtype=param.dtype).to(param.device))
        scores = _forward(model, x, seed)
    projection = torch.randn(scores.shape, generator=generator, dtype=torch.float64).to(scores.device)

    def objective() -> float:
        return (_forward(model, x, seed) * projection).sum().item()

    model.zero_grad(set_to_none=True)
    (_forward(model, x, seed) * projection).sum().backward()
    centre = objective()
    errors: dict[str, dict[str, float]] = {}
    for name, param in model.named_parameters():
        if param.grad is None:
            continue
        flat, grad = param.data.view(-1), param.grad.view(-1)
        worst = {"error": 0.0, "analytic": 0.0, "numeric": 0.0, "kinks": 0}
        for index in torch.randint(flat.numel(), (min(entries, flat.numel()),), generator=generator).tolist():
            original = flat[index].item()
            with torch.no_grad():
                flat[index] = original + STEP
                plus = objective()
                flat[index] = original - STEP
                minus = objective()
                flat[index] = original
            right, left = (plus - centre) / STEP, (centre - minus) / STEP
            if relative_error(right, left, centre) > KINK:
                worst["kinks"] += 1
                continue
            numeric, analytic = (plus - minus) / (2 * STEP), grad[index].item()
            error = relative_error(analytic, numeric, centre)
            if error >= worst["error"]:
                worst.update(error=error, analytic=analytic, numeric=numeric)
        errors[name] = worst
    return errors


def _forward(model: nn.Module, x: torch.Tensor, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)  # the same dropout masks in every evaluation
    return model(x)


@CHECKS.register("gradients")
def gradients(context: CheckContext) -> list[CheckResult]:
    budget = context.budget
    model = context.fresh_model(dtype=torch.float64, width=budget.grad_width, fc_width=2 * budget.grad_width)
    x, _ = context.batch(budget.grad_batch)
    errors = gradient_check(model, x, budget.grad_entries, context.config.seed)
    if not errors:
        return [CheckResult("gradients", "skip", "the model has no trainable parameters")]
    name, worst = max(errors.items(), key=lambda item: item[1]["error"])
    kinks = sum(e["kinks"] for e in errors.values())
    what = (
        "a float64 copy of your model" if context.custom else f"a width-{budget.grad_width} float64 copy of the model"
    )
    details = {
        "errors": {k: v["error"] for k, v in errors.items()},
        "worst": name,
        "kinks_skipped": kinks,
        "step": STEP,
        "entries_per_tensor": budget.grad_entries,
    }
    message = f"max relative error {worst['error']:.1e} over {len(errors)} parameter tensors (worst: {name}) on {what}"
    if worst["error"] <= PASS_ERROR:
        return [CheckResult("gradients", "pass", message, "", details)]
    if worst["error"] <= WARN_ERROR:
        return [
            CheckResult(
                "gradients",
                "warn",
                message,
                "kinks (ReLU, max-pool) can cause this; errors above 1e-2 mean a wrong backward",
                details,
            )
        ]
    return [
        CheckResult(
            "gradients",
            "fail",
            message + f": analytic {worst['analytic']:.4g} vs numeric {worst['numeric']:.4g}",
            f"the backward pass of the layer owning '{name}' is wrong (custom autograd code?)",
            details,
        )
    ]
