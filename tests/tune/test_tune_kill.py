"""A tuning process killed mid-trial loses no trial: its dead trial is failed at once (same host) or after the
heartbeat grace period (elsewhere), queued again with the same parameters, and the study ends as if never killed."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import optuna
import pytest
from conftest import small_config

from convcoach.cli import main
from convcoach.tune import TuneOptions, backends, parse_space, tune
from convcoach.tune.backends import (
    GRACE_SECONDS,
    HEARTBEAT_SECONDS,
    fail_dead_trials,
    open_storage,
    retry_trial,
    with_driver,
)
from convcoach.tune.trials import wait_for_other_processes

COMPLETE, FAIL, RUNNING, WAITING = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.FAIL,
    optuna.trial.TrialState.RUNNING,
    optuna.trial.TrialState.WAITING,
)
# the tests below ask for trials by hand, as a tuning process would inside Study.optimize
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")


def tune_flags(data: Path, storage: str, study: str, out: Path) -> list[str]:
    """5 grid points of lr, 1 epoch each: every uninterrupted or resumed study trains the same 5 configs."""
    return [
        *("--data", f"npz:{data}", "--model", "cnn", "--depth", "2", "--width", "8", "--batch-size", "32"),
        *("--augment", "none", "--epochs", "1", "--val-fraction", "0.3", "--threads", "1", "--quiet"),
        *("--space", "lr=1e-4..1e-1:log", "--sampler", "grid", "--grid-points", "5", "--trials", "5"),
        *("--storage", storage, "--study", study, "--out", str(out)),
    ]


def trials_of(storage: optuna.storages.RDBStorage, study: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return storage.get_all_trials(storage.get_study_id_from_name(study), deepcopy=False)
    except KeyError:  # the process has not created the study yet
        return []


def kill_during_trial(command: list[str], storage_url: str, study: str, number: int, timeout: float = 120.0) -> None:
    """Run `command` and SIGKILL it once trial `number` has its config and trains (its objective set config_values)."""
    process = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, stderr=subprocess.PIPE, text=True)
    storage = optuna.storages.RDBStorage(with_driver(storage_url))
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if any(t.number == number and "config_values" in t.user_attrs for t in trials_of(storage, study)):
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    _, errors = process.communicate()
    assert process.returncode == -signal.SIGKILL, errors
    assert [t.state for t in trials_of(storage, study)][number] == RUNNING  # killed during that trial, not after


@pytest.mark.parametrize("storage_url", ["sqlite"], indirect=True)  # the shared-study kill covers PostgreSQL
def test_a_study_killed_in_trial_1_and_rerun_ends_as_an_uninterrupted_one(
    blobs_npz, tmp_path, storage_url, single_thread
):
    command = [sys.executable, "-m", "convcoach", "tune", *tune_flags(blobs_npz, storage_url, "killed", tmp_path / "k")]
    kill_during_trial(command, storage_url, "killed", number=1)
    rerun = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, text=True)
    assert main(["tune", *tune_flags(blobs_npz, storage_url, "reference", tmp_path / "ref")]) == 0  # meanwhile
    printed, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0

    storage = optuna.storages.RDBStorage(with_driver(storage_url))
    killed, reference = trials_of(storage, "killed"), trials_of(storage, "reference")
    assert [t.state for t in killed] == [COMPLETE, FAIL, COMPLETE, COMPLETE, COMPLETE, COMPLETE]
    # the rerun's first trial is the dead one again, with its parameters
    assert killed[2].params == killed[1].params and killed[2].system_attrs["retry_history"] == [1]
    assert killed[1].datetime_complete <= killed[2].datetime_start  # failed before the rerun trained anything

    def results(trials):
        return {round(t.params["lr"], 12): t.value for t in trials if t.state == COMPLETE}

    assert len(results(reference)) == 5 and results(killed) == results(reference)  # same 5 configs, same accuracies
    summary = json.loads((tmp_path / "k" / "tune.json").read_text())
    assert summary["outcomes"] == {"completed": 5, "killed": 1}
    assert summary["best"]["val_acc"] == json.loads((tmp_path / "ref" / "tune.json").read_text())["best"]["val_acc"]
    rows = {row["trial"]: row for row in csv.DictReader(open(tmp_path / "k" / "trials.csv"))}
    assert (rows["1"]["outcome"], rows["1"]["message"]) == ("killed", "its process died; rerun as trial 2")
    assert "[killed: its process died; rerun as trial 2]" in printed


# `convcoach tune` in a process that takes itself for another machine: this host cannot see whether it lives
ANOTHER_MACHINE = (
    "import sys; from convcoach.tune import backends; backends.HOST = 'another-machine'; "
    "from convcoach.cli import main; sys.exit(main(sys.argv[1:]))"
)


def test_a_process_of_another_machine_killed_mid_trial_is_found_by_its_heartbeat_and_its_trial_rerun(
    blobs_npz, tmp_path, storage_url
):
    flags = tune_flags(blobs_npz, storage_url, "shared", tmp_path / "a")
    kill_during_trial([sys.executable, "-c", ANOTHER_MACHINE, "tune", *flags], storage_url, "shared", number=0)
    killed_at = datetime.now()
    survivor = subprocess.run(
        [sys.executable, "-m", "convcoach", "tune", *tune_flags(blobs_npz, storage_url, "shared", tmp_path / "b")],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert survivor.returncode == 0, survivor.stderr[-2000:]

    dead, *rest = trials_of(optuna.storages.RDBStorage(with_driver(storage_url)), "shared")
    assert dead.state == FAIL and dead.user_attrs["process"]["host"] == "another-machine"
    # no process id to ask: the survivor failed it once its last heartbeat was GRACE_SECONDS old
    assert dead.datetime_complete - killed_at > timedelta(seconds=GRACE_SECONDS - HEARTBEAT_SECONDS)
    assert [t.state for t in rest] == [COMPLETE] * 5  # exactly the requested trials
    (rerun,) = [t for t in rest if t.system_attrs.get("retry_history") == [0]]
    assert rerun.params == dead.params
    assert len({t.user_attrs["process"]["pid"] for t in rest}) == 1  # all run by the survivor
    assert len({t.params["lr"] for t in rest}) == 5  # the 5 grid points, each once
    assert json.loads((tmp_path / "b" / "tune.json").read_text())["outcomes"] == {"completed": 5, "killed": 1}


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def running_trial(study: optuna.Study, process: dict | None) -> optuna.trial.Trial:
    """A trial as a tuning process leaves it while it trains: running, its lr drawn, its heartbeat recorded."""
    trial = study.ask()
    trial.suggest_float("lr", 1e-3, 1e-1, log=True)
    if process is not None:
        trial.set_user_attr("process", process)
    study._storage.record_heartbeat(trial._trial_id)
    return trial


def test_a_dead_process_of_this_host_is_not_waited_for(tmp_path, storage_url):
    study = optuna.create_study(storage=open_storage(storage_url), study_name="convcoach-tune", direction="maximize")
    trial = running_trial(study, {"host": backends.HOST, "pid": dead_pid()})
    alive = running_trial(study, backends.this_process())  # this process: alive, left running
    started = time.monotonic()
    fail_dead_trials(study)
    assert time.monotonic() - started < GRACE_SECONDS / 2  # its heartbeat is fresh: the process id decided
    assert [t.state for t in study.get_trials()] == [FAIL, RUNNING, WAITING]
    study.tell(alive, state=FAIL)
    (retry,) = study.get_trials(states=(WAITING,))
    assert retry.params == study.trials[trial.number].params and retry.system_attrs["failed_trial"] == 0


def test_the_rerun_fills_the_budget_with_exactly_the_requested_trials(blobs_npz, tmp_path, storage_url, single_thread):
    study = optuna.create_study(storage=open_storage(storage_url), study_name="convcoach-tune", direction="maximize")
    dead = running_trial(study, {"host": backends.HOST, "pid": dead_pid()})
    base = small_config(blobs_npz, tmp_path / "tune", epochs=1)
    result = tune(base, parse_space("lr=1e-3..1e-1:log"), TuneOptions(trials=3, storage=storage_url), echo=None)
    assert [(r.number, r.outcome) for r in result.records] == [
        (0, "killed"),
        (1, "completed"),
        (2, "completed"),
        (3, "completed"),
    ]
    assert result.records[1].params == {"lr": dead.params["lr"]}
    assert result.summary["outcomes"] == {"completed": 3, "killed": 1}


def test_a_trial_of_another_host_is_failed_when_its_heartbeat_stops(storage_url):
    study = optuna.create_study(storage=open_storage(storage_url, heartbeat=1, grace=1), direction="maximize")
    running_trial(study, {"host": "elsewhere", "pid": os.getpid()})
    fail_dead_trials(study)
    assert study.trials[0].state == RUNNING  # a fresh heartbeat: alive
    deadline = time.monotonic() + 10
    while study.trials[0].state == RUNNING and time.monotonic() < deadline:
        time.sleep(0.2)
        fail_dead_trials(study)
    assert [t.state for t in study.trials] == [FAIL, WAITING]
    assert study.trials[1].params == study.trials[0].params


def test_a_trial_killed_before_its_objective_began_is_failed_after_a_minute(storage_url, monkeypatch):
    study = optuna.create_study(storage=open_storage(storage_url), direction="maximize")
    running_trial(study, process=None)  # no 'process' attribute: its objective never ran
    fail_dead_trials(study)
    assert study.trials[0].state == RUNNING
    monkeypatch.setattr(backends, "UNSTARTED_SECONDS", 0)
    fail_dead_trials(study)
    assert [t.state for t in study.trials] == [FAIL, WAITING]


def test_the_waiting_loop_skips_this_hosts_dead_trials(storage_url):
    study = optuna.create_study(storage=open_storage(storage_url), direction="maximize")
    running_trial(study, {"host": backends.HOST, "pid": dead_pid()})
    started = time.monotonic()
    wait_for_other_processes(study)
    assert time.monotonic() - started < GRACE_SECONDS / 2
    assert [t.state for t in study.trials] == [FAIL, WAITING]


def test_a_trial_that_keeps_killing_its_process_is_retried_twice(storage_url):
    study = optuna.create_study(storage=open_storage(storage_url), direction="maximize")
    study.add_trial(
        optuna.create_trial(
            state=FAIL,
            params={"lr": 0.01},
            distributions={"lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)},
            system_attrs={"retry_history": [0, 1]},
        )
    )
    retry_trial(study, study.trials[0])
    assert len(study.trials) == 1
