"""Check 3: the model memorizes a tiny training set (20 examples, no regularization, no augmentation)
to 100% accuracy within a bounded number of steps (lecture 004, "make sure you can overfit").
The configured LR is scaled to the tiny batch as the LR sweep scales it to its own, so that both checks
judge the same learning rate. A net memorizes 20 examples whatever their labels, so a failure is read
from what the run measured (the update-to-weight ratio, the first loss, the inputs), never from the labels."""

from __future__ import annotations

import math
import statistics

import torch
import torch.nn as nn

from ...data.splits import stratified_subset
from ..advice import EXPECTED_INITIAL_LOSS
from ..check_report import CheckResult
from ..context import CheckContext, train_steps
from . import CHECKS
from .loss import channel_moments, init_fix, input_cause, without_dropout
from .lr_sweep import batch_factor

HEALTHY, HEALTHY_UPDATE = 1e-3, (1e-4, 3e-2)  # update/weight ratio per step: ~1e-3 (cs231n), the diagnosis's bounds
VANISHING = 1e-3  # first layer's relative gradient below this fraction of the last's (the diagnosis's threshold)
CHANCE_SE = 2.0  # best accuracy within this many binomial standard errors of 1/C: not learning at all


class UpdateRatios:
    """Per conv/linear weight, at each step of a short run: the update-to-weight ratio ||W_t - W_(t-1)|| /
    ||W_(t-1)|| and the relative gradient ||dL/dW|| / ||W|| (which float32 rounding of the update does not hide).

    A weight behind a scale that starts at zero (ResNet's last BatchNorm of each branch under
    --zero-init-residual) gets an exactly zero gradient at step 1 only, and tiny ones while that scale
    grows: such layers are listed in `zero_at_first` and left out of the ratio that judges the learning
    rate, never reported as not learning. Figures are read from step 2 on. `frozen` are the layers that
    never moved at all."""

    def __init__(self, model: nn.Module) -> None:
        self.weights = [(name, m.weight) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        self.before: list[torch.Tensor] | None = None
        self.ratios: dict[str, list[float]] = {name: [] for name, _ in self.weights}
        self.gradients: dict[str, list[float]] = {name: [] for name, _ in self.weights}

    def observe(self) -> None:
        """Call after each forward, before that step's backward: records the previous step's update and gradient."""
        current = [w.detach().clone() for _, w in self.weights]
        before = self.before
        if before is not None and current:
            scale = [old.float().norm().clamp_min(1e-12) for old in before]
            grads = [w.grad if w.grad is not None else torch.zeros_like(w) for _, w in self.weights]
            values = torch.stack(
                [(now - old).float().norm() / s for now, old, s in zip(current, before, scale)]
                + [g.detach().float().norm() / s for g, s in zip(grads, scale)]
            ).tolist()
            for index, (name, _) in enumerate(self.weights):
                self.ratios[name].append(values[index])
                self.gradients[name].append(values[len(self.weights) + index])
        self.before = current

    @property
    def zero_at_first(self) -> list[str]:
        return [name for name, g in self.gradients.items() if len(g) > 1 and g[0] == 0 and any(v > 0 for v in g[1:])]

    @property
    def frozen(self) -> list[str]:
        """Layers whose weights never changed (a zero gradient, or updates below float32's resolution)."""
        return [name for name, r in self.ratios.items() if r and all(v == 0 for v in r)]

    @property
    def no_gradient(self) -> list[str]:
        """Layers whose gradient was exactly zero at every step (dead units, or a path cut off)."""
        return [name for name, g in self.gradients.items() if g and all(v == 0 for v in g)]

    @staticmethod
    def _median(values: list[float]) -> float:
        return statistics.median(values[1:] if len(values) > 1 else values)  # from step 2 on

    def per_layer(self) -> dict[str, float]:
        """Median update ratio per layer that moved, from step 2 on (step 1 alone when the run had one step)."""
        frozen = set(self.frozen)
        return {name: self._median(r) for name, r in self.ratios.items() if r and name not in frozen}

    def median(self) -> float | None:
        """The median layer's ratio, leaving out the layers behind a zero-initialized scale: their updates stay
        as small as that scale for many steps, which says nothing about the learning rate."""
        late = set(self.zero_at_first)
        values = [v for name, v in self.per_layer().items() if math.isfinite(v) and name not in late]
        return statistics.median(values) if values else None

    def gradient_spread(self) -> tuple[float, float] | None:
        """(first, last) layer's median relative gradient, from step 2 on; None without two layers."""
        rows = [g for g in self.gradients.values() if g]
        if len(rows) < 2:
            return None
        return self._median(rows[0]), self._median(rows[-1])


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
    updates = UpdateRatios(model)

    def memorized(loss: float, logits: torch.Tensor, target: torch.Tensor) -> bool:
        updates.observe()  # called after each forward, before that step's update
        accuracies.append((logits.argmax(dim=1) == target).float().mean().item())
        return accuracies[-1] == 1.0

    with without_dropout(model):  # a user model's dropout, DropConnect, stochastic depth
        losses = train_steps(model, optimizer, lambda step: (x, y), context.loss_fn, budget.overfit_steps, memorized)
    steps = len(losses)
    ratio = updates.median()
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
        "chance": 1 / context.num_classes,
        "update_ratio": ratio,
        "update_ratios": updates.per_layer(),
        "zero_update_at_step_1": updates.zero_at_first,
        "never_updated": updates.frozen,
        "no_gradient": updates.no_gradient,
        "relative_gradient_first_last": updates.gradient_spread(),
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
    inputs = input_cause(context, *channel_moments(x))
    if not math.isfinite(losses[-1]) or losses[-1] > 3 * losses[0]:
        return [
            CheckResult(
                "overfit",
                "fail",
                f"loss exploded at step {steps} while overfitting {count} examples "
                f"(lr {context.lr:.3g}, {lr:.3g} at batch {count}: "
                f"{losses[0]:.3g} -> {losses[-1]:.3g})",
                "the learning rate is too high: lower it 3-10x (see lr_sweep)"
                if inputs is None
                else f"{inputs}; else the learning rate is too high: lower it 3-10x (see lr_sweep)",
                details,
            )
        ]
    best, chance = details["best_accuracy"], 1 / context.num_classes
    causes = _causes(context, losses[0], updates, lr) + ([inputs] if inputs else [])
    at_chance = best <= chance + CHANCE_SE * math.sqrt(chance * (1 - chance) / count)
    trained = f"after {steps} steps (loss {losses[0]:.3g} -> {losses[-1]:.3g})"
    if at_chance:
        message = (
            f"not learning at all: {best:.0%} training accuracy on {count} examples {trained}, chance is {chance:.0%}"
        )
    else:
        message = f"only {best:.0%} training accuracy on {count} examples {trained}"
    if causes:
        fix = "likely causes: " + "; ".join(causes)
    elif at_chance:
        updated = f"updates ({ratio:.1e} of the weights per step), " if ratio is not None else ""
        fix = (
            f"{updated}the first loss and the inputs look healthy: look at the gradients and activations checks "
            "(a broken layer), or give the model more capacity"
        )
    else:
        fix = "it learns, too slowly to memorize: more capacity (--width/--depth) or more steps"
        if ratio is not None and ratio < HEALTHY:
            fix = (
                f"it learns, too slowly to memorize: updates are {ratio:.1e} of the weights per step (~1e-3 is "
                f"healthy), raise the learning rate about {HEALTHY / ratio:.0f}x, or give the model more capacity"
            )
    if at_chance or causes:
        fix += f" ({count} examples can be memorized whatever their labels: the labels are not the cause)"
    if late := updates.zero_at_first:
        message += (
            f"; {len(late)} layers had no gradient at step 1 only, behind a zero-initialized scale "
            "(--zero-init-residual): left out of the update ratio"
        )
    return [CheckResult("overfit", "fail", message, fix, details)]


def _causes(context: CheckContext, first_loss: float, updates: UpdateRatios, lr: float) -> list[str]:
    """The causes the overfit run's own figures support: the learning rate (update-to-weight ratio), the
    init (gradients vanishing towards the input, layers without gradient, the first loss against chance)."""
    causes = []
    ratio, spread = updates.median(), updates.gradient_spread()
    late = set(updates.zero_at_first)
    moving = [name for name, g in updates.gradients.items() if g and name not in updates.no_gradient + list(late)]
    if spread is not None and spread[1] > 0 and spread[0] < VANISHING * spread[1]:
        causes.append(
            f"the init: gradients vanish towards the input (relative gradient {spread[0]:.1e} in the first layer, "
            f"{spread[1]:.1e} in the last), so a higher learning rate will not help: {init_fix(context, 'raise')}"
        )
    elif ratio is None and moving:
        causes.append(
            f"the learning rate is far too low: at lr {lr:.3g} no weight moved at all (updates below float32's "
            "resolution)"
        )
    elif ratio is not None and ratio < HEALTHY_UPDATE[0]:
        causes.append(
            f"the learning rate is too low: updates are {ratio:.1e} of the weights per step (~1e-3 is healthy), "
            f"raise it about {HEALTHY / max(ratio, 1e-12):.0f}x"
        )
    elif ratio is not None and ratio > HEALTHY_UPDATE[1]:
        causes.append(
            f"the learning rate is too high: updates are {ratio:.1e} of the weights per step (~1e-3 is healthy), "
            f"lower it about {ratio / HEALTHY:.0f}x"
        )
    if dead := updates.no_gradient:
        causes.append(
            f"{len(dead)} of {len(updates.gradients)} layers got no gradient at any step (e.g. '{dead[0]}'): "
            "dead units or a path cut off (see activations)"
        )
    if context.config.loss in EXPECTED_INITIAL_LOSS:
        expected_fn, formula = EXPECTED_INITIAL_LOSS[context.config.loss]
        expected = expected_fn(context.num_classes)
        if first_loss > 2 * expected:
            causes.append(
                f"the init: the first loss {first_loss:.3g} is over twice {formula.format(C=context.num_classes)} = "
                f"{expected:.3g}, scores too large at init (see initial_loss)"
            )
    return causes
