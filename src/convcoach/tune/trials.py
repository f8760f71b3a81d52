"""One trial of a search: the data every trial shares (without the test split), the objective that
trains a config and reports each epoch to Optuna (pruning), and the bookkeeping of trials shared by
several processes (surplus trials, and the wait for those still running elsewhere)."""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna

from ..config import TrainConfig, config_fields
from ..data import DataBundle
from ..data.bundle import Split
from ..errors import ConfigError
from ..train.callbacks import Callback
from ..train.loop import Trainer
from ..train.setup import load_run_data
from .backends import fail_dead_trials, this_process
from .narrowing import Stage
from .space import Space, sample_config

log = logging.getLogger("convcoach")
# a per-run HTML report for every trial would cost more than a small trial's training
TRIAL_FIXED = {"report": False} if "report" in config_fields(TrainConfig) else {}
LOSS_WINDOW = 5  # iteration losses averaged at a trial's start and end
COUNTED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.RUNNING)


def load_trial_data(base: TrainConfig) -> DataBundle:
    """The data every trial shares, loaded once; trials are scored on the validation split."""
    bundle = load_run_data(base)
    if bundle.val is None or len(bundle.val) == 0:
        raise ConfigError(
            f"tune scores trials on the validation split, and '{base.data}' has none: "
            f"set val_fraction > 0 (got {base.val_fraction})"
        )
    return bundle


def without_test(bundle: DataBundle) -> DataBundle:
    """The bundle with an empty test split: trials never touch the test set."""
    test = bundle.test
    empty = (
        Split(None, test.labels[:0], [], test.shape) if test.images is None else Split(test.images[:0], test.labels[:0])
    )
    return replace(bundle, test=empty)


# ----- one trial -----
class SurplusTrial(Exception):
    """Another process took the last trial of the budget first."""


class TrialReporter(Callback):
    """Reports each epoch's validation accuracy to Optuna and stops the run when the pruner says so; keeps
    the first and last few iteration losses, which say whether a trial diverged, stayed flat or learned."""

    order = Callback.Priority.TUNE_PRUNING  # after early stopping, before the logger and checkpoints

    def __init__(self, trial: optuna.trial.Trial) -> None:
        self.trial = trial
        self.pruned = False
        self.first_losses: list[float] = []
        self.last_losses: deque[float] = deque(maxlen=LOSS_WINDOW)

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        if len(self.first_losses) < LOSS_WINDOW:
            self.first_losses.append(loss)
        self.last_losses.append(loss)

    def loss_figures(self) -> dict[str, float | None]:
        """Mean of the first and of the last LOSS_WINDOW iteration losses (None when not finite)."""

        def mean(values: list[float]) -> float | None:
            value = sum(values) / len(values) if values else math.nan
            return value if math.isfinite(value) else None

        return {"first_loss": mean(self.first_losses), "last_loss": mean(list(self.last_losses))}

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        value = metrics.get("val_acc")
        if value is None:
            return
        self.trial.report(value, metrics["epoch"])
        if (
            metrics["epoch"] < trainer.config.epochs and self.trial.should_prune()
        ):  # after the last epoch there is nothing to save
            self.pruned = True
            trainer.stop(
                "pruned",
                f"trial {self.trial.number} pruned after epoch {metrics['epoch']}: "
                f"val_acc {value:.3f} is below the median of earlier trials",
            )


class TrialObjective:
    """Samples a config, trains it on the shared data without a test pass, returns the best validation accuracy.

    A run the ExplosionGuard stopped (loss > 3x its start, or NaN) becomes a PRUNED trial with outcome 'diverged'."""

    def __init__(self, base: TrainConfig, space: Space, stage: Stage, data: DataBundle, out: Path) -> None:
        self.base, self.space, self.stage, self.data, self.out = base, space, stage, data, out

    def __call__(self, trial: optuna.trial.Trial) -> float:
        trial.set_user_attr("process", this_process())  # first: a trial without it is one that never began
        if is_surplus(trial, self.stage.trials):
            trial.set_user_attr("outcome", "surplus")
            trial.study.stop()
            raise SurplusTrial(f"stage {self.stage.number} already has its {self.stage.trials} trials")
        run_dir = self.out / "trials" / f"stage{self.stage.number}-trial{trial.number:03d}"
        reporter = TrialReporter(trial)
        try:
            config, values = sample_config(
                trial,
                self.space,
                self.base,
                epochs=self.stage.epochs,
                out=str(run_dir),
                overwrite=True,  # the tune directory's owner owns its trials/ too
                quiet=True,
                resume=None,
                **TRIAL_FIXED,
            )
            trial.set_user_attr("config_values", values)
            trial.set_user_attr("run_dir", str(run_dir))
            trainer = Trainer(config, callbacks=[reporter], data=self.data)
        except ConfigError as exc:  # a combination the config rejects: recorded as a failed trial, the search goes on
            trial.set_user_attr("message", str(exc))
            raise
        summary = trainer.fit(test=False)
        for key, value in reporter.loss_figures().items():
            trial.set_user_attr(key, value)
        history = trainer.state.history
        trial.set_user_attr("train_acc", history[-1]["train_acc"] if history else None)
        trial.set_user_attr("epochs_run", trainer.state.epoch)
        trial.set_user_attr("steps", trainer.state.step)
        trial.set_user_attr("planned_steps", trainer.total_steps)
        trial.set_user_attr("seconds", round(trainer.state.elapsed, 3))
        if summary["status"] == "diverged":
            trial.set_user_attr("outcome", "diverged")
            trial.set_user_attr("message", summary["stop_message"])
            raise optuna.TrialPruned(summary["stop_message"])
        if reporter.pruned:
            trial.set_user_attr("outcome", "pruned")
            raise optuna.TrialPruned(trainer.state.stop_message)
        trial.set_user_attr("outcome", "completed")
        return float(summary["best_val_acc"])


def is_surplus(trial: optuna.trial.Trial, budget: int) -> bool:
    """True when `budget` counted trials (complete, pruned or running) were created before this one."""
    ahead = [
        t
        for t in trial.study.get_trials(deepcopy=False, states=COUNTED)
        if t.number < trial.number and t.user_attrs.get("outcome") != "surplus"
    ]
    return len(ahead) >= budget


def counted_trials(study: optuna.Study) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False, states=COUNTED) if t.user_attrs.get("outcome") != "surplus")


def wait_for_other_processes(study: optuna.Study, poll_seconds: float = 1.0) -> None:
    """Before narrowing, wait until no trial of this stage runs anywhere, so every process narrows alike; trials
    whose process died are failed and queued again, not waited for."""
    announced = False
    while True:
        fail_dead_trials(study)
        running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        if not running:
            return
        if not announced:
            log.info("waiting for %d running trial(s) of other processes in study '%s'", len(running), study.study_name)
            announced = True
        time.sleep(poll_seconds)
