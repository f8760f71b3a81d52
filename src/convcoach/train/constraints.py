"""Max-norm constraint (Srivastava et al. 2014): after every update, each unit's incoming weight
vector is rescaled to an L2 norm of at most c."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from .callbacks import Callback, Priority

if TYPE_CHECKING:
    from .loop import Trainer

CONSTRAINED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@torch.no_grad()
def apply_max_norm(model: nn.Module, max_norm: float) -> None:
    """w_j <- w_j * min(1, c / ||w_j||) for each output unit j of every conv and linear layer."""
    for module in model.modules():
        if isinstance(module, CONSTRAINED):
            # a unit's incoming weights are one slice along dim 0: a Linear row, a conv filter
            module.weight.copy_(torch.renorm(module.weight, p=2, dim=0, maxnorm=max_norm))


class MaxNorm(Callback):
    """Applies the constraint after each optimizer step (on_batch_end follows the step)."""

    order = Priority.MAX_NORM

    def __init__(self, max_norm: float) -> None:
        self.max_norm = max_norm

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        apply_max_norm(trainer.model, self.max_norm)
