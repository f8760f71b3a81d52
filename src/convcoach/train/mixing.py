"""Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) as an on_batch_start callback: each
training batch is blended with a shuffled copy of itself, and its targets become soft labels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from .callbacks import Callback, Priority

if TYPE_CHECKING:
    from .loop import Trainer


def soft_targets(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Index targets -> one-hot; soft targets (N, C) pass through."""
    return y.float() if y.dim() == 2 else F.one_hot(y, num_classes).float()


def mixup(x: torch.Tensor, y: torch.Tensor, lam: float, perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x~ = lam x + (1 - lam) x[perm], y~ = lam y + (1 - lam) y[perm] (y as probabilities)."""
    return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]


def cutmix(
    x: torch.Tensor, y: torch.Tensor, lam: float, perm: torch.Tensor, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Paste a box of area (1 - lam) x image from x[perm]; the targets mix by the box's true
    (border-clipped) share. Returns the batch, the targets and that share's lam."""
    height, width = x.shape[2:]
    cut = np.sqrt(1 - lam)
    box_h, box_w = int(height * cut), int(width * cut)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = np.clip([cy - box_h // 2, cy + box_h // 2], 0, height)
    left, right = np.clip([cx - box_w // 2, cx + box_w // 2], 0, width)
    mixed = x.clone()
    mixed[:, :, top:bottom, left:right] = x[perm, :, top:bottom, left:right]
    lam = 1 - (bottom - top) * (right - left) / (height * width)
    return mixed, lam * y + (1 - lam) * y[perm], float(lam)


class MixBatches(Callback):
    """Mixup with Beta(alpha, alpha) weights and/or CutMix; with both on, each batch picks one at
    random (timm's switch). One mixing weight per batch, as in both papers.

    Draws come from a numpy generator seeded from the run's seed; its state is checkpointed."""

    order = Priority.MIX_BATCHES

    def __init__(self, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0, seed: int = 0) -> None:
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.rng = np.random.default_rng(seed + 7919)  # its own stream, apart from data order and augmentation
        self.last_lam: float | None = None  # the last batch's mixing weight (tests, diagnostics)

    def on_batch_start(self, trainer: Trainer, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mix(x, soft_targets(y, trainer.data.num_classes))

    def mix(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix one batch with probability-vector targets y (N, C)."""
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or self.rng.random() < 0.5)
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        lam = float(self.rng.beta(alpha, alpha))
        perm = torch.from_numpy(self.rng.permutation(len(x))).to(x.device)
        if use_cutmix:
            x, y, lam = cutmix(x, y, lam, perm, self.rng)
        else:
            x, y = mixup(x, y, lam, perm)
        self.last_lam = lam
        return x, y

    def state_dict(self) -> dict[str, Any]:
        state = self.rng.bit_generator.state
        # 128-bit PCG64 integers as strings: checkpoints load with weights_only=True
        return {
            "rng": {
                "state": str(state["state"]["state"]),
                "inc": str(state["state"]["inc"]),
                "has_uint32": state["has_uint32"],
                "uinteger": state["uinteger"],
            }
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state["rng"]
        self.rng.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": int(saved["state"]), "inc": int(saved["inc"])},
            "has_uint32": saved["has_uint32"],
            "uinteger": saved["uinteger"],
        }
