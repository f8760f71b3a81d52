"""Sharpness-aware minimization (`--sam RHO`; Foret et al. 2021, "Sharpness-Aware Minimization for
Efficiently Improving Generalization").

Each step takes the gradient twice: at the weights w, then at w + e with e = rho * g / ||g|| (the
steepest ascent of length rho), and the optimizer steps from w with the second gradient. Two forward
and backward passes a step, so a time-budgeted run fits about half the epochs. The second pass leaves
BatchNorm's running statistics alone (each batch counts once), and under DDP the first pass keeps its
gradient local (the perturbation is each process's own, as in the paper's m-sharpness)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["Perturbation", "frozen_running_stats"]


class Perturbation:
    """Moves the parameters to w + e and back; e from their current gradients (divided by `scale`,
    the fp16 loss scale)."""

    def __init__(self, params: list[nn.Parameter], rho: float) -> None:
        self.params, self.rho = params, rho
        self.moved: list[nn.Parameter] = []
        self.saved: list[torch.Tensor] = []

    def ascend(self, scale: float = 1.0) -> float:
        """w <- w + rho * g / ||g||; returns ||g|| (when 0 or not finite the weights stay)."""
        moved = [p for p in self.params if p.grad is not None]
        if not moved:
            return 0.0
        grads = [p.grad for p in moved]
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))).item() / scale
        if not 0 < norm < float("inf"):
            return norm
        with torch.no_grad():
            self.moved, self.saved = moved, [p.detach().clone() for p in moved]
            torch._foreach_add_(moved, torch._foreach_mul(grads, self.rho / (norm * scale)))
        return norm

    def descend(self) -> None:
        """Back to w, bit for bit where the step started."""
        with torch.no_grad():
            for p, saved in zip(self.moved, self.saved, strict=True):
                p.copy_(saved)
        self.moved, self.saved = [], []


@contextlib.contextmanager
def frozen_running_stats(model: nn.Module) -> Iterator[None]:
    """BatchNorm layers normalize by the batch as usual but their running mean, variance and batch
    count come back as they were."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [[b.clone() for b in m.buffers(recurse=False)] for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, buffers in zip(norms, saved, strict=True):
                for b, old in zip(m.buffers(recurse=False), buffers, strict=True):
                    b.copy_(old)
