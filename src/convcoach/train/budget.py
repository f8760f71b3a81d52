"""A wall-time budget: after the first epoch, the run's epoch count is re-planned from its measured
speed so that training, the final test and the report end within `time_budget` minutes, and the LR
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


def affordable_epochs(budget: float, spent: float, epoch_seconds: float, done: int, configured: int) -> int:
    """Epochs that fit: `done` so far plus as many more as the time left (less the end-of-run reserve)
    allows, at least `done` (never below what has been trained) and at most `configured`."""
    left = budget - spent - END_RESERVE_EPOCHS * epoch_seconds
    more = max(0, math.floor(left / epoch_seconds)) if epoch_seconds > 0 else configured
    return max(done, min(configured, done + more))


class TimeBudget(Callback):
    """Plans the epoch count at the end of the first epoch, then re-plans from the mean time of the last
    few epochs: shorter whenever the run would overshoot, longer only within the plan's first quarter
    (never past `--epochs`); the plan is checkpointed."""

    order = Priority.TIME_BUDGET  # after early stopping, before the checkpointer saves the plan

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60.0
        self.planned: int | None = None
        self._configured = 0  # --epochs, the most a plan may hold
        self._clock = 0.0  # the run's training time at the end of the previous epoch
        self._durations: list[float] = []

    def on_train_start(self, trainer: Trainer) -> None:
        if self.planned is not None and self.planned != trainer.config.epochs:  # a resumed run keeps its plan
            trainer.replan(self.planned)

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        done = trainer.state.epoch
        if trainer.resumed and self.planned is not None:
            return  # the set-up clock restarted with the resume: keep the plan made with the full history
        # the mean of the last RECENT epochs (validation included): a machine that slows down for good
        # shortens the plan within a few epochs, before the cut would land on an un-annealed LR, while
        # one slow epoch on a noisy host moves it by a third
        self._durations = [*self._durations, metrics["time"] - self._clock][-RECENT:]
        self._clock = metrics["time"]
        epoch_seconds = sum(self._durations) / len(self._durations)
        spent = time.perf_counter() - trainer.created_at
        if self.planned is None:
            self._configured = trainer.config.epochs
        early = self.planned is not None and done <= GROW_UNTIL * self.planned
        limit = self._configured if self.planned is None or early else self.planned
        plan = [affordable_epochs(self.seconds, spent, epoch_seconds, done, limit)]
        if trainer.dist.enabled:  # every process must run the same number of epochs
            torch.distributed.broadcast_object_list(plan, src=0)
        if self.planned is None or plan[0] != self.planned:
            self.planned = plan[0]
            if trainer.dist.is_main and (trainer.run_dir / "env.json").is_file():  # the rule's outcome beside it
                env = json.loads((trainer.run_dir / "env.json").read_text())
                seconds = round(epoch_seconds, 1)
                env["planned_epochs"] = {"epochs": self.planned, "after_epoch": done, "epoch_seconds": seconds}
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
        summary["time_budget"] = {"minutes": self.seconds / 60, "planned_epochs": self.planned}

    def state_dict(self) -> dict[str, Any]:
        return {"planned": self.planned}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.planned = state["planned"]
