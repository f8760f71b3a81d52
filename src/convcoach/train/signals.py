"""SIGINT / SIGTERM during training: the first one asks the loop to save last.pt after the current
iteration and stop (nothing is lost); a second one interrupts at once."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

import torch

from .distributed import DistContext, all_reduce_sum

if TYPE_CHECKING:
    from .loop import Trainer

log = logging.getLogger("convcoach")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Training stopped on a signal after saving; `signum` gives the exit code (128 + signum)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopRequest:
    """Installs the handlers while training (main thread only: Python's rule) and restores them after."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt  # asked twice: stop now
        self.signum = signum
        log.warning(
            "%s: saving a checkpoint after this iteration, then stopping (send it again to stop at once)",
            signal.Signals(signum).name,
        )

    def agreed(self, dist: DistContext, device: torch.device) -> int | None:
        """The signal to stop on, the same on every DDP rank (a rank that got none follows the others)."""
        if not dist.enabled:
            return self.signum
        signum = all_reduce_sum(torch.tensor([float(self.signum or 0)], device=device), dist).item()
        return self.signum or (int(signal.SIGTERM) if signum else None)


def explain_interrupt(trainer: Trainer) -> None:
    """Say where the run stopped, what the last checkpoint holds and how to continue (rank 0)."""
    if not trainer.dist.is_main:
        return
    epoch = trainer.state.epoch + 1 if trainer.train_loader.position else trainer.state.epoch
    where = f"stopped at iteration {trainer.state.step} (epoch {epoch})"
    if trainer.saved_step is None:
        every = trainer.config.checkpoint_every
        first = f"iteration {every}" if 0 < every < trainer.steps_per_epoch else "the end of epoch 1"
        log.warning(
            "%s, before the first checkpoint (at %s): nothing saved yet; convcoach train --resume %s starts it over",
            where,
            first,
            trainer.run_dir,
        )
    elif trainer.saved_step == trainer.state.step:
        log.warning("%s, saved in last.pt; continue with: convcoach train --resume %s", where, trainer.run_dir)
    else:
        redone = trainer.state.step - trainer.saved_step
        log.warning(
            "%s; last.pt holds iteration %d, the %d since are redone by: convcoach train --resume %s",
            where,
            trainer.saved_step,
            redone,
            trainer.run_dir,
        )
