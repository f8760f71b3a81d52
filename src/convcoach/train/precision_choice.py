"""`--precision auto` for a run: ask the hardware and time a few steps of the bare net; a resumed
run keeps the choice it started with, so a timing that falls the other way cannot switch it mid-run."""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from ..precision import autocast, cpu_has_native_bf16, resolve_precision, timed

if TYPE_CHECKING:
    from .loop import Trainer

log = logging.getLogger("convcoach")


def choose_precision(trainer: Trainer, resume_state: dict[str, Any] | None) -> tuple[str, str]:
    """(precision, why): the saved choice on a resume on the same kind of device, else the hardware's
    answer; under DDP every rank follows rank 0, as DDP needs one precision."""
    saved = (resume_state or {}).get("precision")
    device = trainer.device
    if trainer.config.precision == "auto" and saved and saved["device"] == device.type:
        if not (saved["chosen"] == "bf16" and device.type == "cpu" and not cpu_has_native_bf16()):
            return saved["chosen"], f"kept from the run's start ({saved['chosen']} on {saved['device']})"
        log.warning("the run started in bf16 on a CPU with native bf16; this CPU has none, so it continues in fp32")
    chosen = [resolve_precision(trainer.config.precision, device, step_timer(trainer))]
    if trainer.dist.enabled:
        torch.distributed.broadcast_object_list(chosen, src=0)
    return chosen[0]


def step_timer(trainer: Trainer) -> Callable[[str], float]:
    """A `time_step(precision)` for `resolve_precision`: seconds per training step on one copy of
    the model and one batch, made at the first call (weights untouched) and shared by every round."""

    @functools.cache
    def setup() -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.optim.Optimizer]:
        model = copy.deepcopy(trainer.model)  # the bare net (not yet DDP-wrapped); the run's weights stay untouched
        x, y = next(iter(trainer.loader(trainer.data.train)))
        batch = trainer.config.batch_size
        return model, x[:batch], y[:batch], torch.optim.SGD(model.parameters(), lr=0.0)

    def time_step(precision: str) -> float:
        model, x, y, optimizer = setup()

        def step() -> None:
            with autocast(precision, trainer.device):
                loss = trainer.loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()

        return timed(step)

    return time_step
