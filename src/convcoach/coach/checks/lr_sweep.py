"""Check 4: the LR range test (lecture 004, "find the learning rate that makes the loss go down"), the
same one `train --lr auto` runs (train/lr_finder.py): the run's optimizer, batch size and warm-up, a
short run per half-decade LR from one init, read on a held-out probe batch. It says whether the
configured LR (or the one auto would choose) is too low, too high or in the recommended range; `check`
draws it as lr_finder.png."""

from __future__ import annotations

import math

import torch.nn as nn

from ...train.lr_finder import LrChoice, auto_lr, batch_factor, classify, needs_auto, plan_for
from ..check_report import CheckResult
from ..context import CheckContext
from . import CHECKS

__all__ = ["batch_factor", "classify", "lr_sweep", "symmetric_layer"]


def symmetric_layer(model: nn.Module) -> str | None:
    """The first conv/linear layer whose units (weight rows) all start alike, if any."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear) and module.weight.shape[0] > 1:
            rows = module.weight.detach().flatten(1)
            if (rows - rows.mean(dim=0)).norm() <= 1e-6 * rows.norm().clamp_min(1e-12):
                return name or type(module).__name__
    return None


def _nearest(choice: LrChoice, lr: float) -> dict:
    return min(choice.runs, key=lambda r: abs(math.log10(r["lr"] / lr)))


@CHECKS.register("lr_sweep")
def lr_sweep(context: CheckContext) -> list[CheckResult]:
    config, data = context.config, context.data
    auto = needs_auto(config)
    plan = plan_for(config, len(data.train.labels), per_decade=context.budget.sweep_points_per_decade)
    plan.steps = context.budget.sweep_steps
    template = context.fresh_model(channels_last=config.channels_last)
    choice = auto_lr(  # the whole training split, as train draws from it: the same batches, the same choice
        config,
        template,
        data.train.images,
        data.train.labels,
        context.normalizer,
        context.loss_fn,
        context.train_loss_fn,
        context.device,
        plan,
        extra=None if auto else context.lr,
    )
    table = ", ".join(f"{r['lr']:.2g}:{r['verdict']}" for r in choice.runs)
    where = f"(batch {plan.batch}, {plan.steps} steps per LR: {table})"
    details = {
        **choice.to_dict(),
        "best_lr": choice.lr,
        "configured_lr": None if auto else context.lr,
        "auto": auto,
        "batch": plan.batch,
        "steps": plan.steps,
        "lr_factor": batch_factor(config.optimizer, plan.batch, config.batch_size),
    }
    if choice.lr is None:
        layer = symmetric_layer(template)
        if layer is not None:
            return [
                CheckResult(
                    "lr_sweep",
                    "fail",
                    f"no learning rate lowered the loss: every unit of layer '{layer}' starts the same "
                    f"(--init {config.init}) {where}",
                    "--init auto (random per unit): identical units get identical gradients and never part",
                    details,
                )
            ]
        return [
            CheckResult(
                "lr_sweep",
                "fail",
                f"{choice.reason} {where}",
                "the learning rate is not the problem",  # run_checks names the checks that did not pass
                details,
            )
        ]
    span = choice.span()
    if auto:
        return [
            CheckResult(
                "lr_sweep",
                "pass",
                f"train would choose lr {choice.lr:.2g} (--lr auto): {choice.reason} {where}",
                "",
                details,
            )
        ]
    mine = _nearest(choice, context.lr)
    if mine["verdict"] == "too high":
        return [
            CheckResult(
                "lr_sweep",
                "fail",
                f"lr {context.lr:.3g} is too high: the loss explodes or stalls; recommended {span} {where}",
                f"--lr {choice.lr:.2g} (or --lr auto)",
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
                f"--lr {choice.lr:.2g} (or --lr auto)",
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
