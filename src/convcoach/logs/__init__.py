"""Experiment logs where people already look: `--log tensorboard,mlflow,csv` adds one Callback per sink
(registered in LOGGERS) to every run, on the main process only; `study_logging` nests tune trials."""

from __future__ import annotations

from ..config import TrainConfig
from ..registry import spec_check
from ..train.callbacks import Callback
from ..train.extensions import RUN_CALLBACKS
from . import csv_sink, mlflow_sink, tensorboard_sink  # noqa: F401  (each registers its sink)
from .sinks import LOGGERS, LogSink, check_log, chosen_loggers, register_logger

__all__ = ["LOGGERS", "LogSink", "chosen_loggers", "register_logger"]

spec_check("log")(check_log)


@RUN_CALLBACKS.register("logs")
def log_callbacks(config: TrainConfig, is_main: bool) -> list[Callback]:
    """One callback per --log name; DDP ranks > 0 log nothing (rank 0's figures are the global ones)."""
    return [LOGGERS.get(name).build(config) for name in chosen_loggers(config)] if is_main else []
