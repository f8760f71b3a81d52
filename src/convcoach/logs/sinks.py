"""The registry of experiment-log sinks (`--log NAME`): each a Callback class, with the package it needs."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..registry import Registry
from ..train.callbacks import Callback

if TYPE_CHECKING:
    from ..config import TrainConfig
    from ..train.loop import Trainer


@dataclass(frozen=True)
class LogSink:
    """A sink's builder and the optional package (and convcoach extra that installs it) it imports."""

    build: Callable[[TrainConfig], Callback]
    package: str | None = None
    extra: str | None = None

    def require(self, name: str) -> None:
        """A one-line ConfigError naming the extra when the package is missing; checked before training."""
        if self.package and importlib.util.find_spec(self.package) is None:
            raise ConfigError(
                f"--log {name} needs the {self.package} package: pip install 'convcoach[{self.extra or self.package}]'"
            )


LOGGERS: Registry[LogSink] = Registry("logger")


def register_logger(name: str, package: str | None = None, extra: str | None = None) -> Callable[[type], type]:
    """Class decorator: `--log NAME` builds `cls(config)`; `package` is imported only when the run starts."""

    def add(cls: type) -> type:
        LOGGERS.register(name)(LogSink(cls, package, extra))
        return cls

    return add


def chosen_loggers(config: TrainConfig) -> list[str]:
    """The names in `config.log`, in order, without repeats and without 'none'."""
    names = [name.strip().lower() for name in config.log]
    return list(dict.fromkeys(name for name in names if name and name != "none"))


def check_log(value: Any, config: TrainConfig) -> None:
    """Every --log name is registered and its package installed; --mlflow-uri goes with --log mlflow."""
    names = chosen_loggers(config)
    for name in names:
        LOGGERS.get(name).require(name)
    uri = config.mlflow_uri
    if uri is not None and "mlflow" not in names:
        raise ConfigError(f"mlflow_uri '{uri}' is set but log has no mlflow: add --log mlflow or drop --mlflow-uri")
    if uri is not None and "://" not in uri and uri != "databricks":
        raise ConfigError(
            f"mlflow_uri '{uri}' is not a tracking URI: give sqlite:///PATH/mlflow.db, http://HOST:PORT "
            "or postgresql://..., or leave it unset for sqlite in the run directory"
        )


class LogSinkCallback(Callback):
    """What the sinks share: their slot after the metrics logger and the monitors, the monitor interval."""

    order = Callback.Priority.LOG_SINKS

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.every = config.monitor_every

    def due(self, step: int) -> bool:
        """The coach's monitor interval (SampledMonitor.due): step 1, then every `monitor_every`."""
        return step == 1 or step % self.every == 0

    @staticmethod
    def lr(trainer: Trainer) -> float:
        return trainer.optimizer.param_groups[0]["lr"]


def epoch_values(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers of an epoch's metrics row that the sinks log (its "epoch" and "step" say where)."""
    return {
        key: float(value)
        for key, value in metrics.items()
        if key not in ("epoch", "step") and isinstance(value, (int, float)) and not isinstance(value, bool)
    }
