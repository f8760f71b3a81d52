"""The callback priority table and the hooks declared on Callback."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import torch

from convcoach.coach.diagnosis import Diagnosis
from convcoach.coach.monitors import MONITORS, SampledMonitor
from convcoach.logs import LOGGERS
from convcoach.report.writer import ReportWriter
from convcoach.train.averaging import WeightAverage
from convcoach.train.budget import TimeBudget
from convcoach.train.callbacks import (
    Callback,
    Checkpointer,
    EarlyStopping,
    ExplosionGuard,
    MetricsLogger,
    Priority,
    Progress,
)
from convcoach.train.clipping import GradientClipping
from convcoach.train.constraints import MaxNorm
from convcoach.train.mixing import MixBatches
from convcoach.train.progressive import ProgressiveResize
from convcoach.transfer.heads import FreezeNormStats
from convcoach.tune.trials import TrialReporter

BUILT_IN = {
    ProgressiveResize: Priority.PROGRESSIVE_RESIZE,
    MaxNorm: Priority.MAX_NORM,
    WeightAverage: Priority.WEIGHT_AVERAGE,
    FreezeNormStats: Priority.FREEZE_NORM_STATS,
    ExplosionGuard: Priority.EXPLOSION_GUARD,
    EarlyStopping: Priority.EARLY_STOPPING,
    MixBatches: Priority.MIX_BATCHES,
    TrialReporter: Priority.TUNE_PRUNING,
    SampledMonitor: Priority.MONITORS,
    GradientClipping: Priority.CLIP_GRAD,
    MetricsLogger: Priority.METRICS_LOGGER,
    TimeBudget: Priority.TIME_BUDGET,
    Checkpointer: Priority.CHECKPOINTER,
    Progress: Priority.PROGRESS,
    Diagnosis: Priority.DIAGNOSIS,
    ReportWriter: Priority.REPORT,
    **{LOGGERS.get(name).build: Priority.LOG_SINKS for name in LOGGERS.names()},  # csv, mlflow, tensorboard
}
TRAIN = Path(inspect.getfile(Callback)).parent  # the Trainer and the modules it calls hooks from


def test_no_two_priorities_are_equal():
    values = [member.value for member in Priority.__members__.values()]  # __members__ keeps aliases
    assert len(values) == len(set(values)), sorted(values)


def test_every_built_in_callback_takes_its_slot_from_the_table():
    for cls, slot in BUILT_IN.items():
        assert cls.order is slot, cls.__name__
    for name in MONITORS.names():
        assert MONITORS.get(name).order is Priority.MONITORS
    assert Callback.order is Priority.DEFAULT
    named = set(BUILT_IN.values()) | {Priority.DEFAULT}
    assert named == set(Priority), set(Priority) - named  # no slot in the table without an owner


def _implementers(hook: str) -> list[str]:
    classes = list(BUILT_IN) + [MONITORS.get(name) for name in MONITORS.names()]
    found = [cls for cls in classes if getattr(cls, hook) is not getattr(Callback, hook)]
    return [cls.__name__ for cls in sorted(found, key=lambda cls: cls.order)]


def test_each_hook_runs_its_callbacks_in_the_intended_order():
    # the instruments keep the batch as the network sees it: after resizing and mixing
    batch_start = ["ProgressiveResize", "FreezeNormStats", "MixBatches", "ActivationMonitor"]
    assert _implementers("on_batch_start") == [*batch_start, "NoiseMonitor", "StepSizeMonitor"]
    # the instruments read the true gradient; clipping comes last (Lightning's order too)
    assert _implementers("on_before_optimizer_step") == ["NoiseMonitor", "StepSizeMonitor", "GradientClipping"]
    assert _implementers("on_batch_end") == [
        "MaxNorm",
        "WeightAverage",
        "ExplosionGuard",
        "TrialReporter",
        "ActivationMonitor",
        "GradientMonitor",
        "NoiseMonitor",
        "StepSizeMonitor",  # after max-norm: the step it measures is the constrained one
        "UpdateMonitor",
        "MetricsLogger",
        "CsvLogger",  # the sinks read the monitors' rows of the step
        "MlflowLogger",
        "TensorBoardLogger",
        "TimeBudget",  # times epoch 1's steps for its first plan
        "Progress",
    ]
    assert _implementers("on_validation_end") == ["EarlyStopping", "TrialReporter"]
    sinks = ["CsvLogger", "MlflowLogger", "TensorBoardLogger"]  # flushed before the checkpointer saves
    assert _implementers("on_epoch_end") == ["MetricsLogger", *sinks, "TimeBudget", "Checkpointer", "Progress"]
    assert _implementers("on_summary")[-1] == "Diagnosis"  # after the monitors' summaries


def test_callback_declares_every_hook_the_loop_calls():
    source = "".join(path.read_text() for path in TRAIN.glob("*.py") if path.name != "callbacks.py")
    called = set(re.findall(r"""(?:emit|getattr)\([^"']*["'](on_[a-z_]+)["']""", source))
    assert "on_batch_start" in called and "on_train_start" in called
    for hook in called | {"on_before_optimizer_step", "on_run_end"}:
        method = getattr(Callback, hook, None)
        assert callable(method), hook
        assert method.__doc__, f"{hook} has no docstring"


def test_hook_defaults():
    callback = Callback()
    x, y = torch.zeros(2, 3), torch.tensor([0, 1])
    out_x, out_y = callback.on_batch_start(None, x, y)
    assert out_x is x and out_y is y
    assert callback.on_before_optimizer_step(None) is None
    assert list(inspect.signature(Callback.on_batch_start).parameters) == ["self", "trainer", "x", "y"]
    assert list(inspect.signature(Callback.on_before_optimizer_step).parameters) == ["self", "trainer"]


def test_state_key_is_the_class_name_by_default():
    class Custom(Callback):
        pass

    assert Custom().state_key == "Custom"
    assert ExplosionGuard().state_key == "ExplosionGuard"
    assert MaxNorm(2.0).state_key == "MaxNorm"
