"""`--log mlflow`: one MLflow run per training run: the options as params, the epoch metrics (step: the
epoch) and the iteration loss (step: the iteration), then summary.json, config.yaml and best.pt as
artifacts. The store is `--mlflow-uri`, by default SQLite in the run directory (MLflow's recommended local
store; its file store is in maintenance mode), artifacts beside it in mlartifacts/."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .sinks import LogSinkCallback, epoch_values, register_logger

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from ..config import TrainConfig
    from ..train.loop import Trainer

EXPERIMENT = "convcoach"  # unless $MLFLOW_EXPERIMENT_NAME names another, as for MLflow's own API
FINAL_METRICS = ("test_accuracy", "test_loss", "test_accuracy_without_tta", "best_val_acc")
ARTIFACTS = ("summary.json", "config.yaml")  # and best.pt, except for tune trials (their folders keep it)
MAX_METRICS, MAX_PARAMS = 1000, 100  # MLflow's limits per log_batch call
MAX_PARAM_LENGTH = 6000


@dataclass(frozen=True)
class ParentRun:
    """The run a tune study's trials nest under (logs/study_runs.py sets it while the study runs)."""

    uri: str
    run_id: str
    experiment_id: str


STUDY_PARENT: list[ParentRun | None] = [None]


def default_uri(folder: Path) -> str:
    """SQLite in `folder`: `mlflow ui --backend-store-uri` with this URI shows the runs."""
    return f"sqlite:///{(folder / 'mlflow.db').resolve()}"


@contextlib.contextmanager
def mlflow_errors(uri: str) -> Iterator[None]:
    """MLflow's exceptions (an unreachable server, a bad URI) as one-line ConfigErrors naming the store."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--log mlflow, store {uri}: {first}") from None


def check_server(uri: str) -> None:
    """A tracking server that does not answer is a one-line error at once, not minutes of MLflow's retries."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10).close()
    except urllib.error.HTTPError:
        return  # it answered (a proxy asking for a login, a server without /health): MLflow's calls tell the rest
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(f"--log mlflow: no MLflow server answers at {uri} ({reason}); is it running?") from None


def open_client(uri: str) -> MlflowClient:
    """A client of the store at `uri`; a new SQLite store's table set-up is not announced line by line."""
    check_server(uri)
    for name in ("mlflow.store.db.utils", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    with mlflow_errors(uri):
        return MlflowClient(tracking_uri=uri)


def experiment_id(client: MlflowClient, name: str, uri: str) -> str:
    """The experiment `name`, created on first use (a local store keeps its artifacts beside the database)."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):  # a server or database decides where artifacts go; SQLite keeps them near
        location = (Path(uri[len("sqlite:///") :]).resolve().parent / "mlartifacts").as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:  # another process created it first
        return client.get_experiment_by_name(name).experiment_id


def param_text(value: Any) -> str:
    """A config value as an MLflow param (text): lists comma-joined, None as 'none'."""
    text = "none" if value is None else ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return text[:MAX_PARAM_LENGTH]


def log_params(client: MlflowClient, run_id: str, values: dict[str, Any]) -> None:
    from mlflow.entities import Param

    params = [Param(key, param_text(value)) for key, value in values.items()]
    for start in range(0, len(params), MAX_PARAMS):
        client.log_batch(run_id, params=params[start : start + MAX_PARAMS])


def last_steps(client: MlflowClient, run_id: str) -> dict[str, int]:
    """Each metric's last logged step: a resumed run skips what the run logged after its checkpoint."""
    metrics = client.get_run(run_id).data.metrics
    return {key: max(point.step for point in client.get_metric_history(run_id, key)) for key in metrics}


@register_logger("mlflow", package="mlflow", extra="mlflow")
class MlflowLogger(LogSinkCallback):
    """Logs to one MLflow run; its id is kept in last.pt, so `--resume` appends to the same run without
    logging a step twice. In a tune study, each trial's run nests under the study's run."""

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self.run_id: str | None = None
        self.nested = False  # a tune trial's run, under the study's
        self.pending: list[Any] = []
        self.logged: dict[str, int] = {}

    def on_train_start(self, trainer: Trainer) -> None:
        self.uri = self.config.mlflow_uri or default_uri(trainer.run_dir)
        self.client = open_client(self.uri)
        with mlflow_errors(self.uri):
            if trainer.resumed and self.run_id is not None:
                self.client.update_run(self.run_id, status="RUNNING")
                self.logged = last_steps(self.client, self.run_id)
            else:
                self.run_id = self.start_run(trainer)

    def start_run(self, trainer: Trainer) -> str:
        parent = STUDY_PARENT[0] if STUDY_PARENT[0] is not None and STUDY_PARENT[0].uri == self.uri else None
        self.nested = parent is not None
        tags = {"convcoach.run_dir": str(trainer.run_dir)}
        if parent is not None:
            tags["mlflow.parentRunId"] = parent.run_id
            experiment = parent.experiment_id
        else:
            experiment = experiment_id(self.client, os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT, self.uri)
        run = self.client.create_run(experiment, run_name=trainer.run_dir.name, tags=tags)
        log_params(self.client, run.info.run_id, trainer.config.to_dict())
        return run.info.run_id

    def add(self, key: str, value: float, step: int) -> None:
        """Queue one point, unless a run this one resumes logged that step already."""
        from mlflow.entities import Metric

        if step > self.logged.get(key, -1):
            self.pending.append(Metric(key, float(value), int(time.time() * 1000), step))

    def flush(self) -> None:
        with mlflow_errors(self.uri):
            for start in range(0, len(self.pending), MAX_METRICS):
                self.client.log_batch(self.run_id, metrics=self.pending[start : start + MAX_METRICS])
        self.pending = []

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        self.add("iter_loss", loss, trainer.state.step)

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        for key, value in epoch_values(metrics).items():
            self.add(key, value, metrics["epoch"])
        self.flush()

    def on_checkpoint(self, trainer: Trainer) -> None:
        self.flush()

    def on_train_end(self, trainer: Trainer) -> None:
        self.flush()

    def on_run_end(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        """The final figures, the run's files, and the run marked finished (failed when it diverged)."""
        for key in FINAL_METRICS:
            if isinstance(summary.get(key), (int, float)):
                self.add(key, summary[key], trainer.state.epoch)
        self.flush()
        with mlflow_errors(self.uri):
            for name in ARTIFACTS if self.nested else (*ARTIFACTS, "best.pt"):
                if (trainer.run_dir / name).is_file():
                    self.client.log_artifact(self.run_id, str(trainer.run_dir / name))
            self.client.set_tag(self.run_id, "convcoach.status", summary["status"])
            self.client.set_terminated(self.run_id, "FAILED" if summary["status"] == "diverged" else "FINISHED")

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state["run_id"]
