"""Check 4: short runs over a log-spaced range of learning rates from the same init find where the
loss goes down: too low (barely moves), too high (NaN or above 3x the first loss) and a range to use
(lecture 004, "find the learning rate that makes the loss go down")."""

from __future__ import annotations

import copy
import math

import torch

from ...train.optim import default_lr
from ..check_report import CheckResult
from ..context import CheckContext, train_steps
from . import CHECKS

FLAT = 0.02  # a relative drop of the probe loss below this over the sweep's steps is "barely moves"
GOOD = 0.5  # within this fraction of the best drop is "recommended"
NOTHING_LEARNS = 0.05
ADAPTIVE = {"adagrad", "rmsprop", "adam", "adamw"}  # per-parameter step sizes: sqrt batch scaling


def batch_factor(optimizer: str, sweep_batch: int, batch_size: int) -> float:
    """LR multiplier from the configured batch to the sweep's: linear for SGD (Goyal et al. 2017),
    square root for adaptive methods (Malladi et al. 2022)."""
    ratio = sweep_batch / batch_size
    return math.sqrt(ratio) if optimizer in ADAPTIVE else ratio


def sweep_grid(context: CheckContext) -> list[float]:
    """Half-decades around the optimizer's default LR, plus the configured LR."""
    budget = context.budget
    centre = default_lr(context.config.optimizer)
    low, high = (round(d * budget.sweep_points_per_decade) for d in budget.sweep_decades)
    grid = [centre * 10 ** (k / budget.sweep_points_per_decade) for k in range(low, high + 1)]
    if all(abs(math.log10(lr / context.lr)) > 0.05 for lr in grid):
        grid.append(context.lr)
    return sorted(grid)


def classify(runs: list[dict]) -> None:
    """Label each run (in place): too high, too low, good, ok, or flat when no run learns."""
    finite = [r for r in runs if r["verdict"] != "too high"]
    best = max(finite, key=lambda r: r["drop"], default=None)
    for run in finite:
        if best is None or best["drop"] < FLAT:
            run["verdict"] = "flat"  # nothing learns: the learning rate is not what is wrong
        elif run["drop"] < FLAT:
            run["verdict"] = "too low" if run["lr"] < best["lr"] else "too high"
        elif best is not None and run["drop"] >= GOOD * best["drop"]:
            run["verdict"] = "good"
        else:
            run["verdict"] = "ok"


def _probe_loss(model: torch.nn.Module, probe: tuple[torch.Tensor, torch.Tensor], context: CheckContext) -> float:
    with torch.no_grad():
        return context.loss_fn(model(probe[0]), probe[1]).item()


@CHECKS.register("lr_sweep")
def lr_sweep(context: CheckContext) -> list[CheckResult]:
    budget, config = context.budget, context.config
    size = min(budget.sweep_batch, config.batch_size, len(context.order))
    factor = batch_factor(config.optimizer, size, config.batch_size)
    fast = config.channels_last
    batches = [context.batch(size, step * size, fast) for step in range(budget.sweep_steps)]
    # progress is read on one held-out probe batch before and after: batch-to-batch noise cancels
    probe = context.batch(budget.sweep_probe, budget.sweep_steps * size, fast)
    template = context.fresh_model(channels_last=fast)
    before = _probe_loss(template, probe, context)
    runs = []
    for lr in sweep_grid(context):
        model = copy.deepcopy(template)
        losses = train_steps(
            model, context.optimizer(model, lr * factor), batches.__getitem__, context.train_loss_fn, budget.sweep_steps
        )
        after = _probe_loss(model, probe, context)
        exploded = not all(math.isfinite(v) for v in losses + [after]) or max(losses + [after]) > 3 * losses[0]
        runs.append(
            {
                "lr": lr,
                "before": before,
                "after": after,
                "first": losses[0],
                "last": losses[-1],
                "steps": len(losses),
                "drop": 0.0 if exploded else (before - after) / before,
                "verdict": "too high" if exploded else "",
            }
        )
    classify(runs)
    good = [r["lr"] for r in runs if r["verdict"] == "good"]
    best = max((r for r in runs if r["verdict"] != "too high"), key=lambda r: r["drop"], default=None)
    mine = next(r for r in runs if abs(math.log10(r["lr"] / context.lr)) <= 0.05)
    table = ", ".join(f"{r['lr']:.2g}:{r['verdict']}" for r in runs)
    details = {
        "runs": runs,
        "recommended": [min(good), max(good)] if good else None,
        "best_lr": best["lr"] if best else None,
        "configured_lr": context.lr,
        "batch": size,
        "steps": budget.sweep_steps,
        "lr_factor": factor,
    }
    where = f"(lr at batch {config.batch_size}, {budget.sweep_steps} steps each: {table})"
    if best is None or best["drop"] < NOTHING_LEARNS:
        return [
            CheckResult(
                "lr_sweep",
                "fail",
                f"no learning rate lowered the loss by {NOTHING_LEARNS:.0%} {where}",
                "the learning rate is not the problem: see initial_loss, activations and data",
                details,
            )
        ]
    span = f"{min(good):.2g}-{max(good):.2g}"
    if mine["verdict"] == "too high":
        return [
            CheckResult(
                "lr_sweep",
                "fail",
                f"lr {context.lr:.3g} is too high: the loss explodes or stalls; recommended {span} {where}",
                f"use --lr in {span}",
                details,
            )
        ]
    if mine["verdict"] == "too low":
        return [
            CheckResult(
                "lr_sweep",
                "warn",
                f"lr {context.lr:.3g} is too low: the loss barely moves ({mine['drop']:.1%}); "
                f"recommended {span} {where}",
                f"use --lr in {span}",
                details,
            )
        ]
    if mine["verdict"] == "ok":
        return [
            CheckResult(
                "lr_sweep",
                "pass",
                f"lr {context.lr:.3g} lowers the loss; {span} lowered it faster {where}",
                "",
                details,
            )
        ]
    return [
        CheckResult("lr_sweep", "pass", f"lr {context.lr:.3g} is in the recommended range {span} {where}", "", details)
    ]
