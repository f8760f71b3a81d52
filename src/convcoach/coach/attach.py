"""Attaches the coach to every run: its monitors (rank 0, unless --no-monitors) and the diagnosis."""

from __future__ import annotations

from ..config import TrainConfig
from ..train.callbacks import Callback
from ..train.extensions import RUN_CALLBACKS
from .diagnosis import Diagnosis
from .monitors import default_monitors


@RUN_CALLBACKS.register("coach")
def coach_callbacks(config: TrainConfig, is_main: bool) -> list[Callback]:
    """The monitors sample activations, gradients and updates; the diagnosis reads them at the end."""
    if not is_main:
        return []
    return [*(default_monitors(config.monitor_every) if config.monitors else []), Diagnosis()]
