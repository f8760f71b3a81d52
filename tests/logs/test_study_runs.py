"""`convcoach tune --log mlflow,tensorboard`: one MLflow run per trial, nested under the study's run in the tune
directory's store, and one TensorBoard folder per trial."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_blobs, small_config

pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")

from mlflow.tracking import MlflowClient  # noqa: E402

from convcoach.tune import TuneOptions, parse_space, tune  # noqa: E402


def test_two_trials_are_two_runs_nested_under_the_study(tmp_path, single_thread):
    x, y = make_blobs()
    np.savez(tmp_path / "blobs.npz", x=x, y=y)
    base = small_config(tmp_path / "blobs.npz", tmp_path / "search", log=["mlflow", "tensorboard"], epochs=1)
    result = tune(base, parse_space("lr=0.01..0.1:log"), TuneOptions(trials=2, study="blobs-study"), echo=None)

    client = MlflowClient(f"sqlite:///{result.out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("blobs-study")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [run for run in runs if run.data.tags.get("convcoach.study") == "blobs-study"]
    trials = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 3 and len(trials) == 2
    assert sorted(run.info.run_name for run in trials) == ["stage1-trial000", "stage1-trial001"]
    sampled = sorted(float(run.data.params["lr"]) for run in trials)
    assert sampled == pytest.approx(sorted(record.params["lr"] for record in result.records))
    assert all(run.info.status == "FINISHED" and "val_acc" in run.data.metrics for run in trials)
    trial_files = {item.path for item in client.list_artifacts(trials[0].info.run_id)}
    assert trial_files == {"summary.json", "config.yaml"}  # its best.pt stays in its folder
    assert parent.info.status == "FINISHED"
    best = json.loads((result.out / "tune.json").read_text())["best"]["val_acc"]
    assert parent.data.metrics["best_val_acc"] == pytest.approx(best)
    assert {item.path for item in client.list_artifacts(parent.info.run_id)} >= {"tune.json", "trials.csv"}
    folders = sorted(p.parent.parent.name for p in result.out.glob("trials/*/tensorboard/events.out.tfevents.*"))
    assert folders == ["stage1-trial000", "stage1-trial001"]
