"""Data losses by name; each takes logits and targets that are class indices (N,) or probabilities (N, C)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..registry import Registry, spec_check

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES: Registry[Callable[..., LossFn]] = Registry("loss")


def as_probabilities(target: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """One-hot (optionally smoothed: (1 - eps) * onehot + eps / C) for index targets; soft targets pass through."""
    if target.dim() == 2:
        probs = target.float()
    else:
        probs = F.one_hot(target, num_classes).float()
    if smoothing:
        probs = probs * (1 - smoothing) + smoothing / num_classes
    return probs


@LOSSES.register("cross_entropy", "softmax")
def cross_entropy(label_smoothing: float = 0.0) -> LossFn:
    """Softmax cross-entropy L_i = -log(e^{s_y} / sum_j e^{s_j}); soft targets give -sum_j t_j log p_j."""

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if target.dim() == 1:
            return F.cross_entropy(logits, target, label_smoothing=label_smoothing)
        probs = as_probabilities(target, logits.shape[1], label_smoothing)
        return -(probs * F.log_softmax(logits, dim=1)).sum(dim=1).mean()

    return loss


@LOSSES.register("svm", "hinge")
def svm(label_smoothing: float = 0.0, margin: float = 1.0) -> LossFn:
    """Multiclass SVM (Weston-Watkins, as in the lectures): L_i = sum_{j != y} max(0, s_j - s_y + margin).

    Written out because torch's multi_margin_loss divides by the class count; soft targets use
    their argmax."""

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if target.dim() == 2:
            target = target.argmax(dim=1)
        correct = logits.gather(1, target[:, None])
        margins = (logits - correct + margin).clamp_min(0)
        margins = margins.scatter(1, target[:, None], 0.0)
        return margins.sum(dim=1).mean()

    return loss


@LOSSES.register("kl")
def kl_divergence(label_smoothing: float = 0.0) -> LossFn:
    """KL(t || softmax(s)) = sum_j t_j (log t_j - log p_j): cross-entropy minus the target's entropy."""

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        probs = as_probabilities(target, logits.shape[1], label_smoothing)
        return F.kl_div(F.log_softmax(logits, dim=1), probs, reduction="batchmean")

    return loss


def create_loss(name: str, label_smoothing: float = 0.0) -> LossFn:
    return LOSSES.get(name)(label_smoothing=label_smoothing)


@spec_check("loss")
def _check_loss(value: str, config: object) -> None:
    LOSSES.get(value)
