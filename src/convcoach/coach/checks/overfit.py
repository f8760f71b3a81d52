"""Check 3: the model memorizes a tiny training set (20 examples, no regularization, no augmentation)
to 100% accuracy within a bounded number of steps (lecture 004, "make sure you can overfit").
The configured LR is scaled to the tiny batch as the LR sweep scales it to its own, so that both checks
judge the same learning rate."""

from __future__ import annotations

import math

import torch

from ...data.splits import stratified_subset
from ..check_report import CheckResult
from ..context import CheckContext, train_steps
from . import CHECKS
from .lr_sweep import batch_factor


@CHECKS.register("overfit")
def overfit(context: CheckContext) -> list[CheckResult]:
    budget, labels = context.budget, context.data.train.labels
    count = min(budget.overfit_examples, len(labels))
    x, y = context.images(torch.from_numpy(stratified_subset(labels.numpy(), count, context.config.seed)))
    if context.config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    model = context.fresh_model(
        channels_last=context.config.channels_last, dropout=0.0
    )  # no regularization of any kind
    lr = context.lr * batch_factor(context.config.optimizer, count, context.config.batch_size)
    optimizer = context.optimizer(model, lr, weight_decay=0.0)
    accuracies: list[float] = []

    def memorized(loss: float, logits: torch.Tensor, target: torch.Tensor) -> bool:
        accuracies.append((logits.argmax(dim=1) == target).float().mean().item())
        return accuracies[-1] == 1.0

    losses = train_steps(model, optimizer, lambda step: (x, y), context.loss_fn, budget.overfit_steps, memorized)
    steps = len(losses)
    details = {
        "examples": count,
        "steps": steps,
        "max_steps": budget.overfit_steps,
        "lr": context.lr,
        "batch_lr": lr,
        "optimizer": context.config.optimizer,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "best_accuracy": max(accuracies, default=0.0),
    }
    if accuracies and accuracies[-1] == 1.0:
        return [
            CheckResult(
                "overfit",
                "pass",
                f"100% training accuracy on {count} examples after {steps} steps "
                f"(loss {losses[0]:.3g} -> {losses[-1]:.3g})",
                "",
                details,
            )
        ]
    if not math.isfinite(losses[-1]) or losses[-1] > 3 * losses[0]:
        return [
            CheckResult(
                "overfit",
                "fail",
                f"loss exploded at step {steps} while overfitting {count} examples "
                f"(lr {context.lr:.3g}, {lr:.3g} at batch {count}: "
                f"{losses[0]:.3g} -> {losses[-1]:.3g})",
                "the learning rate is too high: lower it 3-10x (see lr_sweep)",
                details,
            )
        ]
    drop = (losses[0] - losses[-1]) / losses[0]
    message = (
        f"only {details['best_accuracy']:.0%} training accuracy on {count} examples after {steps} steps "
        f"(loss {losses[0]:.3g} -> {losses[-1]:.3g})"
    )
    if drop < 0.05:
        fix = (
            "the loss barely moved: raise the learning rate, "
            "or look for vanishing activations/gradients (see activations)"
        )
    else:
        fix = (
            "the model learns too slowly to memorize: more capacity (--width/--depth), "
            "a higher learning rate, or check the labels"
        )
    return [CheckResult("overfit", "fail", message, fix, details)]
