"""Coarse-to-fine search in stages: many short trials over wide ranges, then fewer longer ones over narrowed ranges."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ConfigError
from .space import Param, Space


@dataclass(frozen=True)
class Stage:
    """One stage of the search: `trials` trials of `epochs` epochs each."""

    number: int  # 1-based
    epochs: int
    trials: int


def plan_stages(
    stages: int, stage_epochs: Sequence[int] | None, stage_trials: Sequence[int] | None, epochs: int, trials: int
) -> list[Stage]:
    """One stage per entry; without per-stage lists every stage runs `trials` trials of `epochs` epochs."""
    if stages < 1:
        raise ConfigError(f"stages must be >= 1, got {stages}")
    epochs_list = list(stage_epochs) if stage_epochs else [epochs] * stages
    trials_list = list(stage_trials) if stage_trials else [trials] * stages
    for name, values in (("stage_epochs", epochs_list), ("stage_trials", trials_list)):
        if len(values) != stages:
            raise ConfigError(
                f"{name} needs one value per stage ({stages}), got {len(values)}: {','.join(map(str, values))}"
            )
        if any(v < 1 for v in values):
            raise ConfigError(f"{name} values must be >= 1, got {','.join(map(str, values))}")
    return [Stage(i + 1, e, t) for i, (e, t) in enumerate(zip(epochs_list, trials_list))]


def top_trials(
    results: list[tuple[float, dict[str, Any]]], top_fraction: float, minimum: int = 2
) -> list[dict[str, Any]]:
    """The parameters of the best max(minimum, ceil(top_fraction * n)) trials by validation accuracy."""
    ranked = sorted(results, key=lambda r: r[0], reverse=True)
    count = max(minimum, math.ceil(top_fraction * len(ranked)))
    return [params for _, params in ranked[:count]]


def narrow(space: Space, best: list[dict[str, Any]], margin: float = 0.25, min_width: float = 0.1) -> Space:
    """The coarse-to-fine rule, per key, from the parameters of the best trials:

    - a range becomes [min, max] of the best trials' values, widened on each side by `margin` x its
      width, in log10 space for log ranges, at least `min_width` x the original width, and clipped
      to the original range (the search never leaves what the user allowed);
    - a choice list keeps the choices the best trials used, in the original order.
    """
    if not best:
        return dict(space)
    narrowed: Space = {}
    for key, param in space.items():
        values = [params[key] for params in best if key in params]
        if not values:
            narrowed[key] = param
        elif not param.is_range:
            narrowed[key] = replace(param, choices=tuple(c for c in param.choices if c in values))
        else:
            narrowed[key] = _narrow_range(param, values, margin, min_width)
    return narrowed


def _narrow_range(param: Param, values: list[float], margin: float, min_width: float) -> Param:
    to_axis = math.log10 if param.log else float
    from_axis = (lambda v: 10.0**v) if param.log else float
    lo_limit, hi_limit = to_axis(param.low), to_axis(param.high)
    points = [to_axis(v) for v in values]
    low, high = min(points), max(points)
    pad = margin * (high - low)
    low, high = low - pad, high + pad
    wanted = min_width * (hi_limit - lo_limit)
    if high - low < wanted:  # all the best trials agree: keep a small window around them
        middle = (low + high) / 2
        low, high = middle - wanted / 2, middle + wanted / 2
    low, high = max(low, lo_limit), min(high, hi_limit)
    new_low, new_high = from_axis(low), from_axis(high)
    if param.integer:
        new_low = max(math.floor(new_low + 1e-9), int(param.low))
        new_high = min(math.ceil(new_high - 1e-9), int(param.high))
        if new_low >= new_high:  # an integer range needs two values
            new_high = min(new_low + 1, int(param.high))
            new_low = new_high - 1
    else:  # exact ends where clipped, so `low < high` and the original bounds survive float round trips
        new_low = param.low if low <= lo_limit else new_low
        new_high = param.high if high >= hi_limit else new_high
    return replace(param, low=new_low, high=new_high)
