"""The wall-time budget: how many epochs fit, the re-planned schedule, resume keeps the plan."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import interrupt_after_epoch, small_config

from convcoach import ConfigError, TrainConfig, Trainer
from convcoach.train.budget import affordable_epochs
from convcoach.train.callbacks import Callback
from convcoach.train.checkpoint import load_checkpoint

BUDGET = 0.15  # minutes: 9 s, room for the set-up on a loaded 2-core host

# one intra-op thread: two threads on a busy 2-core host made a 35 ms epoch take 5 s (OpenMP waits on preempted threads)
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module", autouse=True)
def warm_imports(tmp_path_factory):
    """One tiny run first: the first optimizer and the first report import torch._dynamo and
    matplotlib (~3 s), which would otherwise eat the few seconds these budgets allow when the
    module runs alone."""
    from conftest import make_blobs

    x, y = make_blobs()
    path = tmp_path_factory.mktemp("warm") / "blobs.npz"
    np.savez(path, x=x, y=y)
    Trainer(small_config(path, path.parent / "run", epochs=1)).fit()


def test_affordable_epochs_fill_the_time_left_after_a_half_epoch_reserve():
    # 300 s budget, 40 s spent after the first 25 s epoch: (300 - 40 - 12.5) / 25 = 9.9 -> 9 more, 10 in all
    assert affordable_epochs(300, 40, 25, 1, 30) == 10
    assert affordable_epochs(300, 40, 25, 1, 6) == 6  # never more than configured
    assert affordable_epochs(30, 40, 25, 1, 30) == 1  # already over: stop after what is done
    assert affordable_epochs(1800, 100, 90, 1, 40) == 19  # (1800 - 100 - 45) / 90 = 18.4


def test_time_budget_must_be_positive_minutes(blobs_npz, tmp_path):
    with pytest.raises(ConfigError, match="time_budget is in minutes and must be > 0, got -1"):
        small_config(blobs_npz, tmp_path, time_budget=-1).validate()


class _Slow(Callback):
    """Makes each step take ~25 ms, so an epoch (4 steps) takes ~0.1 s."""

    def on_batch_end(self, trainer, loss):
        time.sleep(0.025)


def test_a_budgeted_run_cuts_its_epochs_and_still_anneals_the_lr(blobs_npz, tmp_path):
    config = small_config(
        blobs_npz, tmp_path / "run", epochs=200, time_budget=BUDGET, schedule="linear", report=False, monitors=False
    )
    start = time.perf_counter()
    summary = Trainer(config, callbacks=[_Slow()]).fit()
    wall = time.perf_counter() - start
    planned = summary["time_budget"]["planned_epochs"]
    assert 2 <= planned < 100 and summary["epochs_run"] == planned  # 9 s at ~0.15 s per epoch, less the set-up
    assert wall < BUDGET * 60 + 1.5
    # the linear schedule was re-planned to the new length: it reaches 0 at the last step
    assert summary["final"]["lr"] == pytest.approx(0.0, abs=1e-12)
    env = json.loads((tmp_path / "run" / "env.json").read_text())  # the rule and its outcome, readable
    assert env["epochs_rule"].startswith(f"as many of 200 epochs as fit in {BUDGET:g} minutes of wall time")
    assert env["recipe_rule"] is None  # no recipe with an fp32 block
    assert env["planned_epochs"]["epochs"] == planned and env["planned_epochs"]["epoch_seconds"] > 0


def test_no_epochs_given_is_the_default_recipes_time_rule():
    from convcoach import TrainConfig
    from convcoach.config import RULE_EPOCHS, RULE_MINUTES

    assert (RULE_EPOCHS, RULE_MINUTES) == (30, 4.75)
    config = TrainConfig().validate()
    assert (config.epochs, config.time_budget) == (30, 4.75)
    assert TrainConfig(time_budget=10).validate().time_budget == 10  # a budget given is kept
    fixed = TrainConfig(epochs=12).validate()
    assert (fixed.epochs, fixed.time_budget) == (12, None)  # --epochs N trains N, with no budget


def test_a_resumed_budgeted_run_keeps_its_plan_and_schedule(blobs_npz, tmp_path):
    config = small_config(
        blobs_npz, tmp_path / "run", epochs=200, time_budget=BUDGET, schedule="linear", report=False, monitors=False
    )
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, callbacks=[_Slow(), interrupt_after_epoch(2)]).fit()
    planned = load_checkpoint(tmp_path / "run" / "last.pt")["callbacks"]["TimeBudget"]["planned"]
    assert 2 <= planned < 100
    resumed = Trainer(TrainConfig(resume=str(tmp_path / "run"), quiet=True))
    assert resumed.config.epochs == 200  # from config.yaml; the plan comes back when training starts
    summary = resumed.fit()
    assert summary["epochs_run"] == planned and summary["final"]["lr"] == pytest.approx(0.0, abs=1e-12)


class _SlowsDown(Callback):
    """Steps take ~25 ms in the first two epochs, then ~100 ms: the machine got 4x slower."""

    order = 86  # after TimeBudget: records each epoch's plan

    def __init__(self) -> None:
        self.plans = []

    def on_batch_end(self, trainer, loss):
        time.sleep(0.025 if trainer.state.epoch < 2 else 0.1)

    def on_epoch_end(self, trainer, metrics):
        self.plans.append(trainer.config.epochs)


def test_a_run_that_slows_down_shortens_its_plan_and_still_ends_in_time(blobs_npz, tmp_path):
    slow = _SlowsDown()
    config = small_config(
        blobs_npz, tmp_path / "run", epochs=200, time_budget=BUDGET, schedule="linear", report=False, monitors=False
    )
    start = time.perf_counter()
    summary = Trainer(config, callbacks=[slow]).fit()
    assert time.perf_counter() - start < BUDGET * 60 + 1.5
    assert slow.plans[-1] < slow.plans[0] and slow.plans == sorted(slow.plans, reverse=True)  # only ever shortened
    assert summary["epochs_run"] == slow.plans[-1] == summary["time_budget"]["planned_epochs"]
    # re-planned schedules keep annealing; a cut in the very last epoch leaves 1/planned of the peak
    assert summary["final"]["lr"] <= 0.25 * 0.05  # without re-planning: ~0.93 x 0.05 (14 of 200 epochs)


def test_the_plan_follows_the_mean_of_the_last_three_epochs(monkeypatch):
    # 60 s budget; 1 s epochs, then one 2 s epoch (noise) and later a lasting slow-down to 3 s
    from types import SimpleNamespace

    from convcoach.train import budget as budget_module
    from convcoach.train.budget import TimeBudget

    clock = {"now": 0.0}
    monkeypatch.setattr(budget_module.time, "perf_counter", lambda: clock["now"])
    trainer = SimpleNamespace(
        state=SimpleNamespace(epoch=0),
        created_at=0.0,
        resumed=False,
        config=SimpleNamespace(epochs=100),
        dist=SimpleNamespace(enabled=False, is_main=True),
        run_dir=Path("/nonexistent-run"),  # no env.json: the plan is not written beside it
    )
    trainer.replan = lambda epochs: setattr(trainer.config, "epochs", epochs)
    callback, plans, elapsed = TimeBudget(1.0), [], 0.0
    for seconds in [1, 1, 1, 2, 1, 1, 3, 3, 3]:
        elapsed += seconds
        clock["now"], trainer.state.epoch = elapsed, trainer.state.epoch + 1
        callback.on_epoch_end(trainer, {"time": elapsed})
        plans.append(callback.planned)
    # epoch 1: (60 - 1 - 0.5) / 1 -> 58 more, 59 in all;
    # the 2 s epoch: mean 4/3 s -> (60 - 5 - 0.67) / 1.33 = 40.75 -> 44
    assert plans[:4] == [59, 59, 59, 44]
    # epoch 5 is still within the plan's first quarter (5 <= 44 / 4): the same mean, a second less
    # spent per epoch done, wins one epoch back: 5 + floor((60 - 6 - 0.67) / 1.33) = 45
    assert plans[4:6] == [5 + math.floor((60 - 6 - 0.5 * 4 / 3) / (4 / 3)), 45] == [45, 45]
    # a lasting 3 s is acted on as it shows in the last three: 5/3 s, 7/3 s, then 3 s per epoch
    assert plans[6] == 7 + math.floor((60 - 10 - 0.5 * 5 / 3) / (5 / 3)) == 36
    assert (
        plans[7:]
        == [8 + math.floor((60 - 13 - 0.5 * 7 / 3) / (7 / 3)), 9 + math.floor((60 - 16 - 0.5 * 3) / 3)]
        == [27, 23]
    )


def _plans(monkeypatch, budget_seconds: float, configured: int, epoch_seconds: list[float]) -> list[int]:
    from types import SimpleNamespace

    from convcoach.train import budget as budget_module
    from convcoach.train.budget import TimeBudget

    clock = {"now": 0.0}
    monkeypatch.setattr(budget_module.time, "perf_counter", lambda: clock["now"])
    trainer = SimpleNamespace(
        state=SimpleNamespace(epoch=0),
        created_at=0.0,
        resumed=False,
        config=SimpleNamespace(epochs=configured),
        dist=SimpleNamespace(enabled=False, is_main=True),
        run_dir=Path("/nonexistent-run"),  # no env.json: the plan is not written beside it
    )
    trainer.replan = lambda epochs: setattr(trainer.config, "epochs", epochs)
    callback, plans, elapsed = TimeBudget(budget_seconds / 60), [], 0.0
    for seconds in epoch_seconds:
        elapsed += seconds
        clock["now"], trainer.state.epoch = elapsed, trainer.state.epoch + 1
        callback.on_epoch_end(trainer, {"time": elapsed})
        plans.append(callback.planned)
    assert trainer.config.epochs == plans[-1]  # the schedule follows every change
    return plans


def test_the_plan_grows_only_within_its_first_quarter_and_never_past_the_configured_epochs(monkeypatch):
    # 100 s budget: a 4 s first epoch (start-up) plans 24; 2 s epochs then lengthen it while the run is
    # in the plan's first quarter; once past it, faster 1 s epochs change nothing
    seconds = [4] + [2] * 11 + [1] * 4
    plans = _plans(monkeypatch, 100, 60, seconds)
    assert plans[0] == 1 + math.floor((100 - 4 - 0.5 * 4) / 4) == 24
    assert plans[1] == 2 + math.floor((100 - 6 - 0.5 * 3) / 3) == 32  # the mean of 4 and 2 s
    assert plans[2] == 3 + math.floor((100 - 8 - 0.5 * 8 / 3) / (8 / 3)) == 37
    assert plans[3] == 4 + math.floor((100 - 10 - 0.5 * 2) / 2) == 48  # the 4 s epoch has left the mean
    assert plans[4:] == [48] * 12  # epochs 13-16 at 1 s are past 48 / 4: no growth
    assert sum(seconds[:12]) + 36 * 2 <= 100  # 48 epochs at the 2 s pace end inside the budget
    # with --epochs 40 the same run stops growing at 40
    assert _plans(monkeypatch, 100, 40, seconds)[:4] == [24, 32, 37, 40]


def test_the_first_plan_comes_from_the_steady_steps_not_a_slow_start(monkeypatch):
    # 20 steps per epoch; the first batch takes 3 s (start-up), the others 0.1 s; 10 s budget
    from types import SimpleNamespace

    from convcoach.train import budget as budget_module
    from convcoach.train.budget import TimeBudget

    clock = {"now": 0.0}
    monkeypatch.setattr(budget_module.time, "perf_counter", lambda: clock["now"])
    trainer = SimpleNamespace(
        state=SimpleNamespace(epoch=0, step=0),
        created_at=0.0,
        resumed=False,
        steps_per_epoch=20,
        val_loader=None,
        config=SimpleNamespace(epochs=40),
        dist=SimpleNamespace(enabled=False, is_main=True),
        run_dir=Path("/nonexistent-run"),
    )
    trainer.replan = lambda epochs: setattr(trainer.config, "epochs", epochs)
    callback = TimeBudget(10 / 60)
    for step in range(1, 21):
        clock["now"] += 3.0 if step == 1 else 0.1
        trainer.state.step = step
        callback.on_batch_end(trainer, 1.0)
        if step == 8:  # planned at step 8 from 0.1 s steps (a 2 s epoch), 3.7 s spent: (10 - 3.7 - 1) / 2 -> 2
            assert callback.planned == trainer.config.epochs == 2
    trainer.state.epoch = 1
    callback.on_epoch_end(trainer, {"time": clock["now"]})
    # the epoch took 4.9 s: planned from it, (10 - 4.9 - 2.45) / 4.9 < 1 would have stopped here un-annealed
    assert callback.planned == 2


def test_a_plan_of_one_epoch_is_made_within_it_so_the_lr_still_anneals(tmp_path):
    from conftest import make_blobs

    class Slower(Callback):
        def on_batch_end(self, trainer, loss):
            time.sleep(0.3)

    x, y = make_blobs(n_per_class=200)
    np.savez(tmp_path / "blobs.npz", x=x, y=y)
    config = small_config(
        tmp_path / "blobs.npz", tmp_path / "run", epochs=3, time_budget=0.1, schedule="linear", report=False
    )
    summary = Trainer(config, callbacks=[Slower()]).fit()
    assert summary["epochs_run"] == summary["time_budget"]["planned_epochs"] == 1
    assert summary["final"]["lr"] == pytest.approx(0.0, abs=1e-12)  # not 2/3 of the peak, as a cut at epoch 1
    env = json.loads((tmp_path / "run" / "env.json").read_text())
    assert env["planned_epochs"]["after_epoch"] == 0 and env["planned_epochs"]["after_step"] == 8
