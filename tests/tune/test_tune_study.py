"""Running searches on tiny data: stages, pruning, explosion abort, no test split, resume, a study shared on SQLite
and PostgreSQL, best.yaml."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from conftest import make_blobs, small_config

from convcoach.cli import main
from convcoach.train.loop import Trainer
from convcoach.tune import TuneOptions, parse_space, tune
from convcoach.tune.backends import with_driver


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny nets on a shared 2-core machine: one intra-op thread is ~8x faster than two fighting other jobs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def staged(blobs, tmp_path_factory):
    """One coarse-to-fine search (3 x 1 epoch, then 2 x 2 epochs, median pruning), recording every evaluated split."""
    out = tmp_path_factory.mktemp("tune") / "search"
    evaluated = []
    original = Trainer.evaluate

    def spy(self, loader):
        evaluated.append((len(loader.split), len(self.data.val), len(self.data.test)))
        return original(self, loader)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "evaluate", spy)
        options = TuneOptions(stages=2, stage_epochs=["1", "2"], stage_trials=["3", "2"], prune="median:1")
        result = tune(
            small_config(blobs, out),
            parse_space("lr=1e-3..0.3:log, dropout=0..0.5, optimizer=[sgd,adam]"),
            options,
            echo=None,
        )
    return result, evaluated


def test_stages_run_their_budgets_and_narrow_inside_the_first_space(staged):
    result, _ = staged
    assert [r.stage for r in result.records] == [1, 1, 1, 2, 2]
    assert [r.epochs for r in result.records] == [1, 1, 1, 2, 2]
    stage2 = result.summary["stages"][1]
    assert stage2["epochs"] == 2 and stage2["trials"] == 2
    low, high = (float(v) for v in stage2["space"][0].removeprefix("lr=").removesuffix(":log").split(".."))
    assert 1e-3 <= low < high <= 0.3
    assert all(low - 1e-9 <= r.params["lr"] <= high + 1e-9 for r in result.records if r.stage == 2)
    assert result.best is not None and result.best.stage == 2


def test_outputs_are_written(staged):
    result, _ = staged
    out = result.out
    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert len(rows) == 5 and {"lr", "dropout", "optimizer", "val_acc", "outcome"} <= set(rows[0])
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "val_acc_vs_dropout.png",
        "val_acc_vs_lr.png",
        "val_acc_vs_optimizer.png",
    ]
    summary = json.loads((out / "tune.json").read_text())
    assert summary["best"]["val_acc"] == pytest.approx(result.best.val_acc)
    assert summary["compute"]["planned_steps"] == 3 * 4 + 2 * 8  # 144 training images / batch 32 = 4 steps per epoch
    assert summary["at_chance"] is None  # trials that learn: no "all trials ended at chance" line


def test_trials_never_evaluate_the_test_split(staged):
    result, evaluated = staged
    assert evaluated, "no evaluation recorded"
    # every evaluation is the validation split, and the trials' bundle has an empty test split
    assert all(split == val and test == 0 for split, val, test in evaluated)
    for record in result.records:
        summary = json.loads((Path(record.run_dir) / "summary.json").read_text())
        assert summary["test_accuracy"] is None and summary["data"]["test"] == 0


def test_best_yaml_round_trips_into_train(staged, tmp_path, capsys):
    result, _ = staged
    best = result.out / "best.yaml"
    code = main(["train", "--config", str(best), "--out", str(tmp_path / "again"), "--quiet"])
    assert code == 0
    config = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert config["epochs_run"] == 2
    assert "test accuracy:" in capsys.readouterr().out
    import yaml

    values = yaml.safe_load(best.read_text())
    assert (
        values["lr"] == pytest.approx(result.best.params["lr"])
        and values["optimizer"] == result.best.params["optimizer"]
    )
    assert values["out"] is None and values["epochs"] == 2


def test_exploding_trial_stops_in_its_first_steps(blobs, tmp_path):
    result = tune(
        small_config(blobs, tmp_path / "boom", epochs=3), parse_space("lr=[1e6]"), TuneOptions(trials=1), echo=None
    )
    (record,) = result.records
    assert record.outcome == "diverged" and record.val_acc is None
    assert record.steps <= 3 and record.planned_steps == 12
    assert "loss exploded at iteration" in record.message
    study = optuna.load_study(study_name="convcoach-tune", storage=f"sqlite:///{tmp_path / 'boom' / 'study.db'}")
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED
    assert result.best is None and result.summary["compute"]["saved_steps"]["diverged"] == 12 - record.steps


def test_interrupted_study_resumes_without_rerunning(blobs, tmp_path, storage_url):
    base = small_config(blobs, tmp_path / "resume", epochs=1)
    space = parse_space("lr=1e-3..0.1:log")
    first = tune(base, space, TuneOptions(trials=2, storage=storage_url, study="resumed"), echo=None)
    again = tune(base, space, TuneOptions(trials=3, jobs=2, storage=storage_url, study="resumed"), echo=None)
    assert [r.number for r in first.records] == [0, 1]
    assert [r.number for r in again.records] == [0, 1, 2]
    assert [r.params for r in again.records[:2]] == [r.params for r in first.records]


def test_two_processes_share_a_study(blobs, tmp_path, storage_url):
    flags = [
        "--data",
        f"npz:{blobs}",
        "--model",
        "cnn",
        "--depth",
        "2",
        "--width",
        "8",
        "--batch-size",
        "32",
        "--augment",
        "none",
        "--epochs",
        "1",
        "--quiet",
        "--space",
        "lr=1e-3..0.1:log",
        "--trials",
        "4",
        "--storage",
        storage_url,
        "--study",
        "shared",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "convcoach", "tune", *flags, "--out", str(tmp_path / f"worker{i}")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=240) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = optuna.load_study(study_name="shared", storage=with_driver(storage_url))
    done = [
        t
        for t in study.trials
        if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        and t.user_attrs.get("outcome") != "surplus"
    ]
    assert len(done) == 4
    by_worker = [sum(1 for t in done if f"worker{i}" in t.user_attrs["run_dir"]) for i in range(2)]
    assert sum(by_worker) == 4
    assert len({round(math.log10(t.params["lr"]), 9) for t in done}) == 4  # the workers drew different points


def test_a_postgresql_storage_without_its_driver_names_the_extra(monkeypatch, capsys, blobs, tmp_path):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` fails, as where it is not installed
    url = "postgresql://user@127.0.0.1:5432/studies"
    flags = ["--data", f"npz:{blobs}", "--space", "lr=[0.01]", "--storage", url, "--out", str(tmp_path / "x")]
    assert main(["tune", *flags]) == 2
    assert capsys.readouterr().err.strip() == (
        f"convcoach: error: storage '{url}': its database driver is missing (import of psycopg halted; None in "
        "sys.modules); for PostgreSQL: pip install 'convcoach[postgres]'"
    )


def test_cli_errors_name_the_key(capsys, blobs, tmp_path):
    assert main(["tune", "--data", f"npz:{blobs}", "--space", "lrr=1e-4..1e-2:log", "--out", str(tmp_path / "x")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "convcoach: error: --space: unknown key 'lrr' (did you mean 'lr'?); any TrainConfig key can be searched"
    )
    assert main(["tune", "--data", f"npz:{blobs}", "--out", str(tmp_path / "x")]) == 2
    assert "tune needs a search space" in capsys.readouterr().err
    assert (
        main(
            [
                "tune",
                "--data",
                f"npz:{blobs}",
                "--space",
                "lr=1e-4..1e-2:log",
                "--sampler",
                "bayes",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.strip() == "convcoach: error: unknown sampler 'bayes'; known: grid, random, tpe"


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_pruned_trial_stops_after_the_epoch_the_pruner_flags(blobs, tmp_path):
    from convcoach.tune.narrowing import Stage
    from convcoach.tune.trials import TrialObjective, load_trial_data, without_test

    base = small_config(blobs, tmp_path / "prune")
    study = optuna.create_study(direction="maximize", pruner=AlwaysPrune())
    objective = TrialObjective(
        base, parse_space("lr=[0.05]"), Stage(1, 3, 1), without_test(load_trial_data(base)), tmp_path
    )
    study.optimize(objective, n_trials=1)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs["outcome"] == "pruned"
    assert (trial.user_attrs["epochs_run"], trial.user_attrs["steps"], trial.user_attrs["planned_steps"]) == (1, 4, 12)
    assert trial.value == trial.intermediate_values[1]  # the validation accuracy reported after epoch 1


def test_a_study_where_no_trial_learns_says_so_and_why(tmp_path):
    images, labels = make_blobs()
    path = tmp_path / "shuffled.npz"
    np.savez(path, x=images, y=np.random.default_rng(1).permutation(labels))  # validation stays at chance
    printed: list[str] = []
    base = small_config(path, tmp_path / "study", epochs=1, val_fraction=0.5, optimizer="sgd")
    result = tune(base, parse_space("lr=[1e6, 1e-9]"), TuneOptions(trials=2, sampler="grid"), echo=printed.append)
    outcomes = {r.outcome: r for r in result.records}
    assert set(outcomes) == {"diverged", "completed"}
    flat = outcomes["completed"]
    assert flat.val_acc < 1 / 3 + 2 * math.sqrt(2 / 9 / 72)  # 72 validation images: within 2 standard errors
    assert flat.first_loss == pytest.approx(flat.last_loss, rel=1e-6)  # lr 1e-9: the loss does not move
    line = (
        "all 2 trials ended at chance (33.3% for 3 classes): no trial learned; the training loss diverged or rose "
        "in 1 and stayed flat in 1 (lr >= 1.00e+06 diverged or rose, lr <= 1.00e-09 stayed flat): the learning "
        "rates are likely all too high or too low - run convcoach check on one trial's options"
    )
    assert result.summary["at_chance"] == line and line in printed
    assert json.loads((result.out / "tune.json").read_text())["at_chance"] == line
