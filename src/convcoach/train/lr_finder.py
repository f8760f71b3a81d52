"""The learning-rate range test that `convcoach check` draws and `--lr auto` trusts: from one init, a
short run per candidate peak LR with the run's own optimizer, batch size and warm-up, each read on one
held-out probe batch before and after (batch-to-batch noise cancels). Too low: the probe loss barely
moves; too high: NaN, or a loss above 3x the first; the chosen LR is the largest one that learns almost
as fast as the best, a half-decade clear of the first LR that blows up."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from ..config import TrainConfig
from ..errors import ConfigError
from ..precision import autocast, resolve_precision
from ..registry import spec_check
from .losses import LossFn
from .optim import OptimSettings, create_optimizer, default_lr
from .schedules import scaled_lr

FLAT = 0.02  # a relative drop of the probe loss below this is "barely moves"
GOOD = 0.5  # within this fraction of the best drop is "good"
EXPLODE = 3.0  # a step loss above this many times the first one has blown up
SAFETY = 10**0.5  # the chosen LR stays this factor below the lowest LR that blew up
NOTHING_LEARNS = 0.05
MAX_LR = 1e6  # a peak LR above this is a typo (1e-6 -> 1e6): it overflows float32 steps
ADAPTIVE = {"adagrad", "rmsprop", "adam", "adamw"}  # per-parameter step sizes: sqrt batch scaling
Batch = tuple[torch.Tensor, torch.Tensor]


def batch_factor(optimizer: str, sweep_batch: int, batch_size: int) -> float:
    """LR multiplier from the configured batch to the sweep's: linear for SGD (Goyal et al. 2017),
    square root for adaptive methods (Malladi et al. 2022)."""
    ratio = sweep_batch / batch_size
    return math.sqrt(ratio) if optimizer in ADAPTIVE else ratio


def lr_grid(centre: float, decades: tuple[float, float], per_decade: int, extra: float | None = None) -> list[float]:
    """Log-spaced LRs from centre*10^decades[0] to centre*10^decades[1], plus `extra` if not on it."""
    low, high = (round(d * per_decade) for d in decades)
    grid = [centre * 10 ** (k / per_decade) for k in range(low, high + 1)]
    if extra is not None and all(abs(math.log10(lr / extra)) > 0.05 for lr in grid):
        grid.append(extra)
    return sorted(grid)


def train_steps(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Callable[[int], Batch],
    loss_fn: LossFn,
    steps: int,
    stop: Callable[[float, torch.Tensor, torch.Tensor], bool] | None = None,
    explode: float = EXPLODE,
    warmup: int = 0,
    precision: str = "fp32",
) -> list[float]:
    """Up to `steps` optimizer steps; the per-step losses, cut short by NaN, by a loss above `explode` x
    the first one (the lectures' abort rule) or when `stop(loss, logits, y)` says so. `warmup`: the
    LR rises linearly over that many steps, as the run's --warmup does; `precision`: the forward's
    autocast (fp32 or bf16)."""
    device = next(model.parameters()).device
    peaks = [group["lr"] for group in optimizer.param_groups]
    losses: list[float] = []
    for step in range(steps):
        if warmup:
            for group, peak in zip(optimizer.param_groups, peaks):
                group["lr"] = peak * min(1.0, (step + 1) / warmup)
        x, y = batches(step)
        with autocast(precision, device):
            logits = model(x)
            loss = loss_fn(logits, y)
        value = loss.item()
        losses.append(value)
        if (
            not math.isfinite(value)
            or value > explode * losses[0]
            or (stop is not None and stop(value, logits.detach(), y))
        ):
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return losses


def sweep(
    template: nn.Module,
    make_optimizer: Callable[[nn.Module, float], torch.optim.Optimizer],
    batches: list[Batch],
    probe: Batch,
    loss_fn: LossFn,
    train_loss_fn: LossFn,
    grid: list[float],
    warmup: int = 0,
    precision: str = "fp32",
) -> list[dict[str, Any]]:
    """One short run per LR of `grid` from a copy of `template`; each run's probe loss before/after."""
    device = next(template.parameters()).device

    def probe_loss(model: nn.Module) -> float:
        with torch.no_grad(), autocast(precision, device):
            return loss_fn(model(probe[0]), probe[1]).float().item()

    before = probe_loss(template)
    runs: list[dict[str, Any]] = []
    for lr in grid:
        if len(runs) >= 2 and all(r["verdict"] == "too high" for r in runs[-2:]):
            runs.append(
                {
                    "lr": lr,
                    "before": before,
                    "after": math.nan,
                    "first": math.nan,
                    "last": math.nan,
                    "steps": 0,
                    "drop": 0.0,
                    "verdict": "too high",
                }
            )  # above two LRs that blew up: skipped
            continue
        model = copy.deepcopy(template)
        losses = train_steps(
            model,
            make_optimizer(model, lr),
            batches.__getitem__,
            train_loss_fn,
            len(batches),
            warmup=warmup,
            precision=precision,
        )
        after = probe_loss(model)
        exploded = not all(math.isfinite(v) for v in losses + [after]) or max(losses + [after]) > EXPLODE * losses[0]
        drop = 0.0 if exploded else (before - after) / before
        runs.append(
            {
                "lr": lr,
                "before": before,
                "after": after,
                "first": losses[0],
                "last": losses[-1],
                "steps": len(losses),
                "drop": drop,
                "verdict": "too high" if exploded else "",
            }
        )
    classify(runs)
    return runs


def classify(runs: list[dict[str, Any]]) -> None:
    """Label each run (in place): too high, too low, good, ok, or flat when no run learns."""
    finite = [r for r in runs if r["verdict"] != "too high"]
    best = max(finite, key=lambda r: r["drop"], default=None)
    for run in finite:
        if best is None or best["drop"] < FLAT:
            run["verdict"] = "flat"  # nothing learns: the learning rate is not what is wrong
        elif run["drop"] < FLAT:
            run["verdict"] = "too low" if run["lr"] < best["lr"] else "too high"
        elif run["drop"] >= GOOD * best["drop"]:
            run["verdict"] = "good"
        else:
            run["verdict"] = "ok"


@dataclass
class LrChoice:
    """What the range test found: the recommended range, the chosen LR and why (one sentence)."""

    lr: float | None
    low: float | None
    high: float | None
    reason: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    def span(self) -> str:
        """The recommended range as text: "0.01-0.1", or one value when only one grid point is good."""
        if self.low is None or self.high is None:
            return "none"
        return f"{self.low:.2g}" if math.isclose(self.low, self.high) else f"{self.low:.2g}-{self.high:.2g}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "recommended": [self.low, self.high] if self.low else None,
            "reason": self.reason,
            "runs": self.runs,
        }


def choose(runs: list[dict[str, Any]]) -> LrChoice:
    """The LR that lowered the probe loss most, kept SAFETY below the lowest LR above it that blew up."""
    good = [r["lr"] for r in runs if r["verdict"] == "good"]
    learning = [r for r in runs if r["verdict"] not in ("too high",)]
    best = max(learning, key=lambda r: r["drop"], default=None)
    if best is None or best["drop"] < NOTHING_LEARNS:
        return LrChoice(None, None, None, f"no learning rate lowered the loss by {NOTHING_LEARNS:.0%}", runs)
    blown = [r["lr"] for r in runs if r["verdict"] == "too high" and r["lr"] > best["lr"]]
    ceiling = min(blown) / SAFETY if blown else math.inf
    safe = [lr for lr in good if lr <= ceiling * 1.0001] or [min(good)]
    chosen = best["lr"] if best["lr"] in safe else max(safe)
    limit = f"; the loss blew up from {min(blown):.2g}" if blown else ""
    reason = (
        f"lr {chosen:.2g} lowered the held-out loss most ({-best['drop']:.0%} in {best['steps']} steps); "
        f"{min(good):.2g}-{max(good):.2g} lowered it at least half as much{limit}"
    )
    return LrChoice(chosen, min(good), max(good), reason, runs)


# the peak LR the shipped defaults were measured with: (model, optimizer, norm) -> measured; Adam-family
# defaults (1e-3) hold for every model; the others only where they were measured
MEASURED = {("resnet", "muon", "batch"), ("resnet", "nesterov", "batch")}
MEASURED_EVERYWHERE = {"adam", "adamw", "rmsprop"}


def needs_auto(config: TrainConfig) -> bool:
    """--lr auto, or an unset --lr whose default was never measured for this model, optimizer and norm."""
    if config.lr == "auto":
        return True
    if config.lr is not None or config.optimizer in MEASURED_EVERYWHERE or config.pretrained:
        return False  # a pretrained start fine-tunes at 0.1x the default (setup.base_lr), never a range test
    return (config.model, config.optimizer, config.norm.split(":")[0]) not in MEASURED


@dataclass
class SweepPlan:
    """How the run's start is imitated: batch size, steps per LR, warm-up, the grid."""

    batch: int
    steps: int = 8
    probe: int = 256
    per_decade: int = 2
    decades: tuple[float, float] = (-2.0, 1.0)
    extra: list[float] = field(default_factory=list)


def plan_for(config: TrainConfig, train_size: int, per_decade: int = 2) -> SweepPlan:
    """The run's own batch size (at most 256: larger batches are swept at 256 with the LR scaled)."""
    return SweepPlan(max(1, min(config.batch_size, 256, train_size // 2)), per_decade=per_decade)


def sweep_precision(config: TrainConfig, device: torch.device) -> str:
    """The range test's precision: the run's own where it trains in bf16 (`--precision auto` on native
    bf16, untimed: the test runs 1.4-2.2x faster on an AVX512-BF16 CPU); fp32 otherwise (fp16 would need the
    run's grad scaler)."""
    if config.precision != "auto":
        return "bf16" if config.precision == "bf16" else "fp32"
    return "bf16" if resolve_precision("auto", device)[0] == "bf16" else "fp32"


@spec_check("lr")
def _check_lr(value: float | str | None, config: object) -> None:
    if value is None or value == "auto":
        return
    if isinstance(value, str) or not value > 0:
        raise ConfigError(f"lr must be a number > 0 (e.g. 0.1) or auto, got {value}")
    batch = config.effective_batch_size()  # type: ignore[attr-defined]
    peak = scaled_lr(value, batch, config.base_batch_size)  # type: ignore[attr-defined]
    if math.isfinite(value) and not peak <= MAX_LR:  # an infinite lr is named by the finite-number check
        name = "batch_size" if batch == config.batch_size else "batch_size x accumulate"  # type: ignore[attr-defined]
        scaling = f" x {name}/base_batch_size ({batch}/{config.base_batch_size}) = {peak:g}"  # type: ignore[attr-defined]
        scaling = scaling if peak != value else ""
        raise ConfigError(f"lr {value:g}{scaling}: the peak learning rate must be at most {MAX_LR:g}")


def auto_lr(
    config: TrainConfig,
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    normalizer: Callable[[torch.Tensor], torch.Tensor],
    loss_fn: LossFn,
    train_loss_fn: LossFn,
    device: torch.device,
    plan: SweepPlan | None = None,
    extra: float | None = None,
) -> LrChoice:
    """The range test on the run's own start (its optimizer, batch size and warm-up) from a copy of the
    initialized `model`, over half-decades around the optimizer's default LR (plus `extra`, e.g. the
    configured LR); the global RNG is left as it was, so the run that follows is the same as one given
    the chosen LR by hand. `convcoach check` runs this same test."""
    plan = plan or plan_for(config, len(labels))
    grid = lr_grid(default_lr(config.optimizer), plan.decades, plan.per_decade, extra)
    with torch.random.fork_rng(devices=[]):
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(config.seed))
        need = plan.batch * plan.steps + plan.probe

        def take(index: torch.Tensor) -> Batch:
            x = normalizer(images[index].to(device))
            if config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return x, labels[index].to(device)

        picked = order[(torch.arange(need) % len(order))]
        batches = [take(picked[i * plan.batch : (i + 1) * plan.batch]) for i in range(plan.steps)]
        probe = take(picked[plan.steps * plan.batch :])
        factor = batch_factor(config.optimizer, plan.batch, config.effective_batch_size())

        def make_optimizer(net: nn.Module, lr: float) -> torch.optim.Optimizer:
            settings = OptimSettings(
                lr * factor, config.momentum, config.momentum_convention, config.weight_decay, config.muon_lr
            )
            return create_optimizer(config.optimizer, net, settings)

        template = copy.deepcopy(model).train()
        runs = sweep(
            template,
            make_optimizer,
            batches,
            probe,
            loss_fn,
            train_loss_fn,
            grid,
            warmup=min(config.warmup, plan.steps),
            precision=sweep_precision(config, device),
        )
    return choose(runs)
