"""A wall-time budget: early in the first epoch, and after every epoch, the run's epoch count is planned
from its measured speed so that training, the final test and the report end within `time_budget` minutes, and the LR
schedule is stretched or shrunk to the new length (it still anneals to its end, unlike a hard stop)."""

from __future__ import annotations

import json
import logging
import math
import time
from typing import TYPE_CHECKING, Any

import torch

from ..files import write_json
from .callbacks import Callback, Priority

if TYPE_CHECKING:
    from .loop import Trainer

log = logging.getLogger("convcoach")

# the final test pass (with TTA) and report.html cost about this many epochs' time (measured: the
# default recipe's test + flip TTA + report ~9 s against ~25 s per epoch)
END_RESERVE_EPOCHS = 0.5
RECENT = 3  # epochs whose mean time predicts the next ones
# the plan may also grow while the run is within this fraction of it (one-cycle's LR is still rising):
# a first epoch slowed by start-up, or one noisy epoch, then costs no epochs (measured: a long-recipe
# run planned 50 epochs from its first two at 33-36 s, then ran at ~30 s and ended 4 minutes early)
GROW_UNTIL = 0.25
# the first plan comes early in the first epoch, from the steady step time of its second quarter (the first
# batches carry one-time costs), so that even a plan of one epoch anneals its LR to the end; the epoch's
# end then corrects it with the measured time
FIRST_PLAN_AT = 0.2  # of the first epoch's steps, and at least FIRST_PLAN_STEPS
FIRST_PLAN_STEPS = 8
VALIDATION_COST = 1 / 3  # a validation image costs about a third of a training image (forward only)


def affordable_epochs(budget: float, spent: float, epoch_seconds: float, done: int, configured: int) -> int:
    """Epochs that fit: `done` so far plus as many more as the time left (less the end-of-run reserve)
    allows, at least `done` (never below what has been trained) and at most `configured`."""
    left = budget - spent - END_RESERVE_EPOCHS * epoch_seconds
    more = max(0, math.floor(left / epoch_seconds)) if epoch_seconds > 0 else configured
    return max(done, min(configured, done + more))


class TimeBudget(Callback):
    """Plans the epoch count a fifth into the first epoch (FIRST_PLAN_AT), then re-plans from the mean time of the last
    few epochs: shorter whenever the run would overshoot, longer only within the plan's first quarter
    (never past `--epochs`); the plan is checkpointed."""

    order = Priority.TIME_BUDGET  # after early stopping, before the checkpointer saves the plan

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60.0
        self.planned: int | None = None
        self._configured = 0  # --epochs, the most a plan may hold
        self._clock = 0.0  # the run's training time at the end of the previous epoch
        self._durations: list[float] = []
        self._batch_times: list[float] = []  # when each batch of the first epoch ended, for the first plan

    def on_train_start(self, trainer: Trainer) -> None:
        if self.planned is not None and self.planned != trainer.config.epochs:  # a resumed run keeps its plan
            trainer.replan(self.planned)

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        if trainer.state.epoch > 0 or trainer.resumed:
            return
        self._batch_times.append(time.perf_counter())
        steps, at = len(self._batch_times), max(FIRST_PLAN_STEPS, math.ceil(FIRST_PLAN_AT * trainer.steps_per_epoch))
        if self.planned is None and steps == at < trainer.steps_per_epoch:
            self._plan(trainer, self._epoch_estimate(trainer), done=0)

    def _epoch_estimate(self, trainer: Trainer, validation_seconds: float | None = None) -> float:
        """The first epoch's time at the steady step time of the batches timed so far (their second half),
        with its validation's measured time, or an estimate of it."""
        times = self._batch_times
        half = len(times) // 2
        training = (times[-1] - times[half]) / (len(times) - 1 - half) * trainer.steps_per_epoch
        if validation_seconds is not None:
            return training + validation_seconds
        val = trainer.val_loader
        val_share = len(val.split) / max(1, len(trainer.train_loader.split)) if val is not None else 0.0
        return training * (1 + VALIDATION_COST * val_share)

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        done = trainer.state.epoch
        if trainer.resumed and self.planned is not None:
            return  # the set-up clock restarted with the resume: keep the plan made with the full history
        # the mean of the last RECENT epochs (validation included): a machine that slows down for good
        # shortens the plan within a few epochs, before the cut would land on an un-annealed LR, while
        # one slow epoch on a noisy host moves it by a third
        duration = metrics["time"] - self._clock
        if done == 1 and len(self._batch_times) > FIRST_PLAN_STEPS:  # one-time start-up costs are not per epoch
            duration = min(duration, self._epoch_estimate(trainer, time.perf_counter() - self._batch_times[-1]))
        self._durations = [*self._durations, duration][-RECENT:]
        self._clock = metrics["time"]
        self._batch_times = []
        self._plan(trainer, sum(self._durations) / len(self._durations), done)

    def _plan(self, trainer: Trainer, epoch_seconds: float, done: int) -> None:
        spent = time.perf_counter() - trainer.created_at
        if self.planned is None:
            self._configured = trainer.config.epochs
        early = self.planned is not None and done <= GROW_UNTIL * self.planned
        limit = self._configured if self.planned is None or early else self.planned
        plan = [max(1, affordable_epochs(self.seconds, spent, epoch_seconds, done, limit))]
        if trainer.dist.enabled:  # every process must run the same number of epochs
            torch.distributed.broadcast_object_list(plan, src=0)
        if self.planned is None or plan[0] != self.planned:
            self.planned = plan[0]
            if trainer.dist.is_main and (trainer.run_dir / "env.json").is_file():  # the rule's outcome beside it
                env = json.loads((trainer.run_dir / "env.json").read_text())
                seconds = round(epoch_seconds, 1)
                env["planned_epochs"] = {
                    "epochs": self.planned,
                    "after_epoch": done,
                    "after_step": trainer.state.step,
                    "epoch_seconds": seconds,
                }
                write_json(trainer.run_dir / "env.json", env)
            if self.planned != trainer.config.epochs:
                log.info(
                    "time budget %.1f min: %d epochs fit (%.0f s per epoch so far), not %d; schedule re-planned",
                    self.seconds / 60,
                    self.planned,
                    epoch_seconds,
                    trainer.config.epochs,
                )
                trainer.replan(self.planned)

    def on_summary(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        summary["time_budget"] = {
            "minutes": self.seconds / 60,
            "planned_epochs": self.planned,
            "asked_epochs": self._configured or None,  # --epochs, before the plan cut it
        }

    def state_dict(self) -> dict[str, Any]:
        return {"planned": self.planned, "configured": self._configured}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.planned = state["planned"]
        self._configured = state.get("configured", 0)  # older checkpoints kept only the plan
