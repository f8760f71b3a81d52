"""The callbacks a run gets from its config: train's own (guard, logger, checkpoints, progress, early
stopping, mixing, gradient clipping, max-norm, EMA, time budget, progressive resizing) and those that
packages outside train/ add to every run (the coach's monitors and diagnosis, the HTML report). A package registers a
factory in RUN_CALLBACKS when it is imported (convcoach's __init__ imports them all), so the loop
never imports the packages that build on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..config import TrainConfig
from ..registry import Registry
from .averaging import WeightAverage
from .budget import TimeBudget
from .callbacks import Callback, Checkpointer, EarlyStopping, ExplosionGuard, MetricsLogger, Progress
from .clipping import GradientClipping
from .constraints import MaxNorm
from .mixing import MixBatches
from .progressive import ProgressiveResize, parse_progressive

# factory(config, is_main) -> the callbacks it adds to a run; `is_main` is False on DDP ranks > 0,
# which neither log, draw nor write
CallbackFactory = Callable[[TrainConfig, bool], list[Callback]]
RUN_CALLBACKS: Registry[CallbackFactory] = Registry("run callback factory")


def run_callbacks(config: TrainConfig, is_main: bool) -> list[Callback]:
    """Every registered factory's callbacks, in registration order."""
    return [callback for name in RUN_CALLBACKS.names() for callback in RUN_CALLBACKS.get(name)(config, is_main)]


def default_callbacks(config: TrainConfig, run_dir: Path, is_main: bool) -> list[Callback]:
    """The callbacks `config` asks for; only rank 0 (`is_main`) logs, draws and writes."""
    callbacks: list[Callback] = [ExplosionGuard(config.explosion_factor)]
    if is_main:
        callbacks += [MetricsLogger(run_dir / "metrics.jsonl"), Checkpointer(run_dir), Progress(config.quiet)]
    callbacks += run_callbacks(config, is_main)
    if config.patience:
        callbacks.append(EarlyStopping(config.patience, config.min_delta, config.smoothing))
    if config.mixup or config.cutmix:
        callbacks.append(MixBatches(config.mixup, config.cutmix, config.seed))
    if config.clip_grad:
        callbacks.append(GradientClipping(config.clip_grad))
    if config.max_norm:
        callbacks.append(MaxNorm(config.max_norm))
    if config.ema:
        callbacks.append(WeightAverage(config.ema))
    if config.time_budget:
        callbacks.append(TimeBudget(config.time_budget))
    if progressive := parse_progressive(config.progressive_resize):
        callbacks.append(ProgressiveResize(*progressive))
    return callbacks
