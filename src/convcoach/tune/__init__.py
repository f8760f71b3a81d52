"""Hyperparameter search on Optuna: a search space, coarse-to-fine stages, trials on the Trainer, reports."""

from __future__ import annotations

from typing import Any

from .space import Param, parse_space, space_from_mapping

__all__ = ["Param", "TuneOptions", "tune", "parse_space", "space_from_mapping"]


def __getattr__(name: str) -> Any:
    # `tune` and `TuneOptions` load on first use, so `convcoach train` never pays for importing Optuna
    if name == "tune":
        from .study import tune

        return tune
    if name == "TuneOptions":
        from .options import TuneOptions

        return TuneOptions
    raise AttributeError(name)
