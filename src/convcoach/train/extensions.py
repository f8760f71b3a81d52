"""Callbacks that packages outside train/ add to every run: the coach's monitors and diagnosis,
the HTML report. A package registers a factory here when it is imported (convcoach's __init__
imports them all), so the loop never imports the packages that build on it."""

from __future__ import annotations

from collections.abc import Callable

from ..config import TrainConfig
from ..registry import Registry
from .callbacks import Callback

# factory(config, is_main) -> the callbacks it adds to a run; `is_main` is False on DDP ranks > 0,
# which neither log, draw nor write
CallbackFactory = Callable[[TrainConfig, bool], list[Callback]]
RUN_CALLBACKS: Registry[CallbackFactory] = Registry("run callback factory")


def run_callbacks(config: TrainConfig, is_main: bool) -> list[Callback]:
    """Every registered factory's callbacks, in registration order."""
    return [callback for name in RUN_CALLBACKS.names() for callback in RUN_CALLBACKS.get(name)(config, is_main)]
