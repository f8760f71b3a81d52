"""--log tensorboard,mlflow,csv: each sink's files read back with its own reader (TensorBoard's event reader,
MLflow's client, pandas-style CSV) match metrics.jsonl, also across a run stopped past its checkpoint and
resumed; a missing package or a wrong name is a one-line error before training."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from conftest import make_blobs, small_config

from convcoach import ConfigError, Trainer
from convcoach.cli import main
from convcoach.train.callbacks import Callback

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")

from mlflow.tracking import MlflowClient  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

SINKS = ["tensorboard", "mlflow", "csv"]
STEPS = list(range(1, 13))  # 3 epochs of 4 steps
STOP_AT = 7  # a step inside epoch 2: last.pt holds epoch 1 (step 4), steps 5-7 were logged after it


class StopAfterLogging(Callback):
    """Stops the run at STOP_AT after the sinks logged it and flushed it to disk, as a kill would find them."""

    order = 99

    def on_batch_end(self, trainer, loss):
        if trainer.state.step == STOP_AT:
            for sink in trainer.callbacks:
                if type(sink).__module__.startswith("convcoach.logs"):
                    sink.on_checkpoint(trainer)  # their flush, without a checkpoint
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory, single_thread_module) -> Path:
    """3 epochs of 4 steps with every sink, stopped at step 7 (after logging it), then resumed to the end."""
    import numpy as np

    folder = tmp_path_factory.mktemp("logs")
    x, y = make_blobs()
    np.savez(folder / "blobs.npz", x=x, y=y)
    config = small_config(folder / "blobs.npz", folder / "run", log=SINKS, monitor_every=2, report=False)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, callbacks=[StopAfterLogging()]).fit()
    Trainer(small_config(folder / "blobs.npz", folder / "run", resume=str(folder / "run"))).fit()
    return folder / "run"


@pytest.fixture(scope="module")
def single_thread_module():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def jsonl_rows(run: Path, kind: str) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [row for row in rows if row["kind"] == kind]


def events(run: Path) -> EventAccumulator:
    reader = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    return reader.Reload()


def test_tensorboard_scalars_match_metrics_jsonl_once_per_step(resumed_run):
    reader = events(resumed_run)
    iterations = jsonl_rows(resumed_run, "iter")
    assert [row["step"] for row in iterations] == STEPS
    loss = reader.Scalars("iteration/loss")
    assert [event.step for event in loss] == STEPS  # 5-7 logged twice, shown once
    assert [event.value for event in loss] == pytest.approx([row["loss"] for row in iterations], rel=1e-6)
    assert [e.value for e in reader.Scalars("iteration/lr")] == pytest.approx([r["lr"] for r in iterations])
    epochs = jsonl_rows(resumed_run, "epoch")
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        scalars = reader.Scalars(f"epoch/{key}")
        assert [(e.step, pytest.approx(e.value, rel=1e-6)) for e in scalars] == [(r["step"], r[key]) for r in epochs]


def test_tensorboard_has_monitors_histograms_images_and_hparams(resumed_run):
    reader = events(resumed_run)
    tags = reader.Tags()
    monitor_steps = [1, 2, 4, 6, 8, 10, 12]  # monitor_every=2
    dead = next(tag for tag in tags["scalars"] if tag.startswith("activations/dead/"))
    assert [e.step for e in reader.Scalars(dead)] == monitor_steps
    assert any(tag.startswith("gradients/grad_norm/") for tag in tags["scalars"])
    assert any(tag.startswith("updates/update_ratio/") for tag in tags["scalars"])
    weights = [tag for tag in tags["histograms"] if tag.startswith("weights/")]
    activations = [tag for tag in tags["histograms"] if tag.startswith("activations/")]
    assert weights and activations
    assert [e.step for e in reader.Histograms(weights[0])] == monitor_steps
    assert sorted(tags["images"]) == ["test/confusion_matrix", "test/predictions"]
    assert reader.Images("test/confusion_matrix")[0].encoded_image_string.startswith(b"\x89PNG")
    content = reader.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["lr"].number_value == 0.05 and hparams["model"].string_value == "cnn"
    assert hparams["log"].string_value == "tensorboard,mlflow,csv"
    summary = json.loads((resumed_run / "summary.json").read_text())
    assert reader.Scalars("hparams/test_accuracy")[0].value == pytest.approx(summary["test_accuracy"])


def test_mlflow_run_holds_params_epoch_metrics_and_artifacts(resumed_run):
    client = MlflowClient(f"sqlite:///{resumed_run / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("convcoach")
    (run,) = client.search_runs([experiment.experiment_id])  # the resume continued the same run
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["lr"] == "0.05" and run.data.params["log"] == "tensorboard,mlflow,csv"
    epochs = jsonl_rows(resumed_run, "epoch")
    for key in ("train_loss", "val_acc", "lr"):
        history = client.get_metric_history(run.info.run_id, key)
        assert [(m.step, pytest.approx(m.value, rel=1e-6)) for m in history] == [(r["epoch"], r[key]) for r in epochs]
    iteration_steps = [m.step for m in client.get_metric_history(run.info.run_id, "iter_loss")]
    assert sorted(iteration_steps) == STEPS  # 5-7 were logged before the stop, not again
    summary = json.loads((resumed_run / "summary.json").read_text())
    assert run.data.metrics["test_accuracy"] == pytest.approx(summary["test_accuracy"])
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"summary.json", "config.yaml", "best.pt"}
    assert (resumed_run / "mlartifacts").is_dir()


def test_metrics_csv_rows_equal_the_epochs_of_metrics_jsonl(resumed_run):
    with open(resumed_run / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    epochs = jsonl_rows(resumed_run, "epoch")
    assert list(rows[0]) == ["epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "time"]
    assert [{key: float(value) for key, value in row.items()} for row in rows] == [
        {key: pytest.approx(value) for key, value in row.items() if key != "kind"} for row in epochs
    ]
    with open(resumed_run / "iterations.csv", newline="") as handle:
        iterations = list(csv.DictReader(handle))
    assert [int(row["step"]) for row in iterations] == STEPS
    assert [float(row["loss"]) for row in iterations] == [row["loss"] for row in jsonl_rows(resumed_run, "iter")]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"log": ["mlflow"]}, r"^--log mlflow needs the mlflow package: pip install 'convcoach\[mlflow\]'$"),
        (
            {"log": ["tensorboard"]},
            r"^--log tensorboard needs the tensorboard package: pip install 'convcoach\[tensorboard\]'$",
        ),
    ],
)
def test_a_missing_package_is_a_one_line_error_naming_the_extra(monkeypatch, tmp_path, overrides, message):
    monkeypatch.setitem(sys.modules, overrides["log"][0], None)  # as if not installed: find_spec says None
    with pytest.raises(ConfigError, match=message):
        small_config(tmp_path / "none.npz", tmp_path / "run", **overrides).validate()


def test_cli_refuses_a_missing_package_before_training(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    code = main(["train", "--data", "digits", "--log", "csv,mlflow", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == "convcoach: error: --log mlflow needs the mlflow package: pip install 'convcoach[mlflow]'"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"log": ["wandb"]}, r"^unknown logger 'wandb'; known: csv, mlflow, tensorboard$"),
        ({"log": ["tensorbord"]}, r"^unknown logger 'tensorbord' \(did you mean 'tensorboard'\?\)"),
        ({"mlflow_uri": "http://localhost:5000"}, r"^mlflow_uri 'http://localhost:5000' is set but log has no mlflow"),
        ({"log": ["mlflow"], "mlflow_uri": "runs/mlflow"}, r"^mlflow_uri 'runs/mlflow' is not a tracking URI: give"),
    ],
)
def test_wrong_log_options_are_one_line_errors(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        small_config(tmp_path / "none.npz", tmp_path / "run", **overrides).validate()


def test_log_none_and_repeats_add_each_sink_once(tmp_path):
    from convcoach.logs import chosen_loggers

    assert chosen_loggers(small_config(tmp_path, tmp_path, log=["none"])) == []
    assert chosen_loggers(small_config(tmp_path, tmp_path, log=["CSV", "csv", "tensorboard"])) == ["csv", "tensorboard"]


def test_an_mlflow_server_that_does_not_answer_is_a_one_line_error_at_once(tmp_path, blobs_npz):
    config = small_config(blobs_npz, tmp_path / "run", log=["mlflow"], mlflow_uri="http://127.0.0.1:9", report=False)
    with pytest.raises(ConfigError, match=r"^--log mlflow: no MLflow server answers at http://127\.0\.0\.1:9 \("):
        Trainer(config).fit()


def test_log_comes_from_yaml_lists_and_comma_separated_flags(tmp_path):
    from convcoach import load_config

    (tmp_path / "run.yaml").write_text("log: [tensorboard, csv]\n")
    assert load_config(tmp_path / "run.yaml").log == ["tensorboard", "csv"]
    assert load_config(log="mlflow,csv").log == ["mlflow", "csv"]


def test_only_the_main_process_gets_sinks(tmp_path):
    from convcoach.logs import log_callbacks

    config = small_config(tmp_path, tmp_path, log=SINKS)
    assert [type(c).__name__ for c in log_callbacks(config, True)] == ["TensorBoardLogger", "MlflowLogger", "CsvLogger"]
    assert log_callbacks(config, False) == []  # DDP ranks > 0
