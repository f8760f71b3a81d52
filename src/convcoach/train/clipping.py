"""Gradient clipping (`--clip-grad NORM`): between backward and the optimizer step, the gradients' global
L2 norm is scaled down to NORM when above it (torch's clip_grad_norm_, as Lightning's gradient_clip_val and
Hugging Face's max_grad_norm); the pre-clip norms and how often they were clipped go to summary.json,
and the coach's gradient monitor logs the step's pre-clip norm with its samples."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .callbacks import Callback, Priority

if TYPE_CHECKING:
    from .loop import Trainer


class GradientClipping(Callback):
    """Clips the accumulated (with --accumulate), unscaled (with fp16) and all-reduced (under DDP)
    gradient of every step. Counts stay on the device: no synchronization per step."""

    order = Priority.CLIP_GRAD  # last on the hook: callbacks before it see the true gradients, as in Lightning

    def __init__(self, max_norm: float) -> None:
        self.max_norm = max_norm
        self.last_norm: torch.Tensor | None = None  # the last step's global norm before clipping
        # over the steps whose norm was finite (a skipped fp16 step's is not): steps, clipped, sum, max
        self.totals = torch.zeros(4, dtype=torch.float64)

    def on_train_start(self, trainer: Trainer) -> None:
        self.totals = self.totals.to(trainer.device)

    def on_before_optimizer_step(self, trainer: Trainer) -> None:
        norm = torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), self.max_norm)
        self.last_norm = norm.detach()
        finite = torch.isfinite(norm)
        value = torch.where(finite, norm, 0).to(self.totals.dtype)
        clipped = finite & (norm > self.max_norm)
        self.totals[:3] += torch.stack([finite, clipped, value]).to(self.totals.dtype)
        self.totals[3] = torch.maximum(self.totals[3], value)

    def summary(self) -> dict[str, Any]:
        """The clipping threshold, the steps counted, the fraction clipped and the pre-clip norms' mean and max."""
        steps, clipped, total, peak = self.totals.tolist()
        return {
            "max_norm": self.max_norm,
            "steps": int(steps),
            "clipped_fraction": clipped / steps if steps else None,
            "norm_mean": total / steps if steps else None,
            "norm_max": peak if steps else None,
        }

    def on_summary(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        summary["clip_grad"] = self.summary()

    def state_dict(self) -> dict[str, Any]:
        return {"totals": self.totals.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.totals = torch.tensor(state["totals"], dtype=torch.float64, device=self.totals.device)
