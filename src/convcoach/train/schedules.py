"""Learning-rate schedules as per-iteration multipliers of the base LR, run by torch's LambdaLR.

Multipliers (rather than torch's StepLR, CosineAnnealingLR, OneCycleLR, ...) let linear warmup
compose with any schedule, and resume needs only the step count."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..registry import Registry, parse_spec, spec_check, spec_float

Multiplier = Callable[[int], float]  # iteration -> factor
# name -> factory(spec, args, total_steps, steps_per_epoch) -> multiplier
SCHEDULES: Registry = Registry("schedule")


@SCHEDULES.register("constant")
def _constant(spec: str, args: list[str], total: int, per_epoch: int) -> Multiplier:
    return lambda step: 1.0


@SCHEDULES.register("step")
def _step(spec: str, args: list[str], total: int, per_epoch: int) -> Multiplier:
    """'step:30,60[:gamma]': multiply by gamma (0.1) at each listed epoch."""
    if not args or not args[0]:
        raise ConfigError(f"schedule '{spec}': give the epochs, e.g. step:30,60")
    milestones = sorted(int(spec_float(spec, e, "schedule")) for e in args[0].split(","))
    if milestones[0] < 0:
        raise ConfigError(f"schedule '{spec}': epochs must be >= 0")
    gamma = _decay(spec, args[1]) if len(args) > 1 else 0.1
    return lambda step: gamma ** sum(step // per_epoch >= m for m in milestones)


@SCHEDULES.register("exp")
def _exp(spec: str, args: list[str], total: int, per_epoch: int) -> Multiplier:
    """'exp:0.95': multiply by gamma after every epoch."""
    gamma = _decay(spec, args[0]) if args else 0.95
    return lambda step: gamma ** (step // per_epoch)


def _decay(spec: str, text: str) -> float:
    gamma = spec_float(spec, text, "schedule")
    if not 0 < gamma <= 1:
        raise ConfigError(f"schedule '{spec}': the decay factor must be in (0, 1], got {gamma:g}")
    return gamma


@SCHEDULES.register("cosine")
def _cosine(spec: str, args: list[str], total: int, per_epoch: int) -> Multiplier:
    """alpha_t = 1/2 alpha_0 (1 + cos(pi t / T))."""
    return lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


@SCHEDULES.register("linear")
def _linear(spec: str, args: list[str], total: int, per_epoch: int) -> Multiplier:
    """alpha_t = alpha_0 (1 - t / T)."""
    return lambda step: max(0.0, 1 - step / total)


@SCHEDULES.register("invsqrt")
def _invsqrt(spec: str, args: list[str], total: int, per_epoch: int) -> Multiplier:
    """alpha_t = alpha_0 / sqrt(t), t counted in epochs from 1."""
    return lambda step: 1 / math.sqrt(1 + step / per_epoch)


@SCHEDULES.register("onecycle")
def _onecycle(spec: str, args: list[str], total: int, per_epoch: int) -> Multiplier:
    """'onecycle[:pct]' (Smith 2018): cosine rise from alpha_0/25 over pct (0.25) of training, cosine fall to ~0."""
    pct = spec_float(spec, args[0], "schedule") if args else 0.25
    if not 0 < pct < 1:
        raise ConfigError(f"schedule '{spec}': the warm fraction must be in (0, 1)")
    peak, start, end = max(1, int(pct * total)), 1 / 25, 1e-4

    def multiplier(step: int) -> float:
        if step < peak:
            return start + (1 - start) * 0.5 * (1 - math.cos(math.pi * step / peak))
        progress = min(1.0, (step - peak) / max(1, total - peak))
        return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * progress))

    return multiplier


@dataclass
class ScheduleSpec:
    name: str
    args: list[str]
    spec: str


# the most ':'-separated arguments each schedule takes
def parse_schedule(spec: str) -> ScheduleSpec:
    name, args = parse_spec(spec)
    SCHEDULES.get(name)(spec, args, 100, 10)  # validates the arguments
    args.check_all_read(spec, "schedule")
    return ScheduleSpec(name, args, spec)


def multiplier(spec: str, total_steps: int, steps_per_epoch: int, warmup: int = 0) -> Multiplier:
    """The schedule's multiplier times a linear warmup over the first `warmup` iterations."""
    parsed = parse_schedule(spec)
    base = SCHEDULES.get(parsed.name)(spec, parsed.args, max(1, total_steps), max(1, steps_per_epoch))
    if warmup <= 0:
        return base
    return lambda step: base(step) * min(1.0, (step + 1) / warmup)


def create_scheduler(
    optimizer: torch.optim.Optimizer, spec: str, total_steps: int, steps_per_epoch: int, warmup: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepped once per iteration."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier(spec, total_steps, steps_per_epoch, warmup))


def scaled_lr(lr: float, batch_size: int, base_batch_size: int | None) -> float:
    """The batch-size rule (Goyal et al. 2017): lr grows linearly with batch_size / base_batch_size."""
    return lr * batch_size / base_batch_size if base_batch_size else lr


@spec_check("schedule")
def _check_schedule(value: str, config: object) -> None:
    parse_schedule(value)
