"""The sinks in `convcoach tune`: with --log mlflow, the study is one MLflow run and each trial's run nests
under it, all in one store (by default SQLite in the tune directory); TensorBoard and CSV need nothing more,
each trial writing its own folder (`tensorboard --logdir TUNE_DIR/trials` shows them side by side)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import TrainConfig
from .mlflow_sink import (
    STUDY_PARENT,
    ParentRun,
    default_uri,
    experiment_id,
    log_params,
    mlflow_errors,
    open_client,
)
from .sinks import chosen_loggers

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

STUDY_FILES = ("tune.json", "best.yaml", "trials.csv")


@contextlib.contextmanager
def study_logging(base: TrainConfig, out: Path, study: str) -> Iterator[TrainConfig]:
    """While the study runs: `base` with the store every trial logs to, and the study's parent run (found
    again when the study is resumed into the same store). At the end the parent gets the study's files and
    its best validation accuracy."""
    if "mlflow" not in chosen_loggers(base):
        yield base
        return
    base = dataclasses.replace(base, mlflow_uri=base.mlflow_uri or default_uri(out))
    client = open_client(base.mlflow_uri)
    with mlflow_errors(base.mlflow_uri):
        parent = parent_run(client, base, study)
    STUDY_PARENT[0] = parent
    status = "KILLED"
    try:
        yield base
        status = "FINISHED"
    finally:
        STUDY_PARENT[0] = None
        with mlflow_errors(base.mlflow_uri):
            finish_parent(client, parent, out, status)


def parent_run(client: MlflowClient, base: TrainConfig, study: str) -> ParentRun:
    """The study's run in experiment `study`: the one a resumed study started, or a new one with the base options."""
    experiment = experiment_id(client, study, base.mlflow_uri)
    runs = client.search_runs([experiment], max_results=1000)  # the parent and its trials: few
    found = next((run for run in runs if run.data.tags.get("convcoach.study") == study), None)
    if found is not None:
        client.update_run(found.info.run_id, status="RUNNING")
        return ParentRun(base.mlflow_uri, found.info.run_id, experiment)
    run = client.create_run(experiment, run_name=study, tags={"convcoach.study": study})
    log_params(client, run.info.run_id, base.to_dict())
    return ParentRun(base.mlflow_uri, run.info.run_id, experiment)


def finish_parent(client: MlflowClient, parent: ParentRun, out: Path, status: str) -> None:
    """The study's result files as artifacts, its best validation accuracy as a metric, the run ended."""
    for name in STUDY_FILES:
        if (out / name).is_file():
            client.log_artifact(parent.run_id, str(out / name))
    if (out / "tune.json").is_file():
        best = json.loads((out / "tune.json").read_text()).get("best")
        if best and isinstance(best.get("val_acc"), (int, float)):
            client.log_metric(parent.run_id, "best_val_acc", float(best["val_acc"]))
    client.set_terminated(parent.run_id, status)
