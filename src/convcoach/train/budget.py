"""A wall-time budget: after the first epoch, the run's epoch count is re-planned from its measured
speed so that training, the final test and the report end within `time_budget` minutes, and the LR
schedule is stretched or shrunk to the new length (it still anneals to its end, unlike a hard stop)."""
from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

import torch

from .callbacks import Callback

if TYPE_CHECKING:
    from .loop import Trainer

log = logging.getLogger("convcoach")

# the final test pass (with TTA) and report.html cost about this many epochs' time (measured: the
# default recipe's test + flip TTA + report ~9 s against ~25 s per epoch)
END_RESERVE_EPOCHS = 0.5


def affordable_epochs(budget: float, spent: float, epoch_seconds: float, done: int, configured: int) -> int:
    """Epochs that fit: `done` so far plus as many more as the time left (less the end-of-run reserve)
    allows, at least `done` (never below what has been trained) and at most `configured`."""
    left = budget - spent - END_RESERVE_EPOCHS * epoch_seconds
    more = max(0, math.floor(left / epoch_seconds)) if epoch_seconds > 0 else configured
    return max(done, min(configured, done + more))


class TimeBudget(Callback):
    """Plans the epoch count once, at the end of the first epoch; the plan is checkpointed."""

    order = 85  # after early stopping, before the checkpointer saves the plan

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60.0
        self.planned: int | None = None

    def on_train_start(self, trainer: Trainer) -> None:
        if self.planned is not None and self.planned != trainer.config.epochs:  # a resumed run keeps its plan
            trainer.replan(self.planned)

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        if self.planned is not None or trainer.state.epoch != 1:
            return
        spent = time.perf_counter() - trainer.created_at
        plan = [affordable_epochs(self.seconds, spent, metrics["time"], 1, trainer.config.epochs)]
        if trainer.dist.enabled:  # every process must run the same number of epochs
            torch.distributed.broadcast_object_list(plan, src=0)
        self.planned = plan[0]
        if self.planned != trainer.config.epochs:
            log.info("time budget %.1f min: %d epochs fit (first epoch %.0f s), not %d; schedule re-planned",
                     self.seconds / 60, self.planned, metrics["time"], trainer.config.epochs)
            trainer.replan(self.planned)

    def on_summary(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        summary["time_budget"] = {"minutes": self.seconds / 60, "planned_epochs": self.planned}

    def state_dict(self) -> dict[str, Any]:
        return {"planned": self.planned}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.planned = state["planned"]
