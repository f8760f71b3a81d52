"""Weight averaging: an exponential moving average (EMA) of the weights and BatchNorm statistics,
updated after every step; validation, best.pt and the test pass use the average (Polyak averaging;
the EMA of timm's ModelEmaV2)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from .callbacks import Callback, Priority
from .distributed import unwrap

if TYPE_CHECKING:
    from .loop import Trainer


def ema_decay(decay: float, updates: int) -> float:
    """The decay for update number `updates` (from 1): min(decay, (1 + n) / (10 + n)), so that the
    first updates follow the fast-moving weights instead of averaging in the random init."""
    return min(decay, (1 + updates) / (10 + updates))


class WeightAverage(Callback):
    """Keeps `shadow`, the EMA of every floating-point entry of the model's state_dict:
    shadow <- d * shadow + (1 - d) * current after each optimizer step; integer entries are copied."""

    order = Priority.WEIGHT_AVERAGE  # right after the step (and max-norm), before monitors read the weights

    def __init__(self, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.shadow: dict[str, torch.Tensor] | None = None

    def on_train_start(self, trainer: Trainer) -> None:
        state = unwrap(trainer.model).state_dict()
        if self.shadow is None:
            self.shadow = _copy(state)
        else:  # a resumed run's average, loaded onto the CPU: to the model's device
            self.shadow = {k: v.to(state[k].device) for k, v in self.shadow.items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One EMA step towards `model`'s current state."""
        state = model.state_dict()
        if self.shadow is None:
            self.shadow = _copy(state)
        self.updates += 1
        decay = ema_decay(self.decay, self.updates)
        floats = [k for k, v in state.items() if v.is_floating_point()]
        torch._foreach_lerp_([self.shadow[k] for k in floats], [state[k].detach() for k in floats], 1.0 - decay)
        for key, value in state.items():
            if not value.is_floating_point():
                self.shadow[key].copy_(value)

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        self.update(unwrap(trainer.model))

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Inside the block `model` holds the averaged weights; its own come back afterwards."""
        if self.shadow is None:
            yield model
            return
        backup = _copy(model.state_dict())
        model.load_state_dict(self.shadow)
        try:
            yield model
        finally:
            model.load_state_dict(backup)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates, self.shadow = state["updates"], state["shadow"]


def _copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}
