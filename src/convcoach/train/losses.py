"""Data losses by name; each takes logits and targets that are class indices (N,) or probabilities (N, C)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..registry import Registry, spec_check

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# a registered builder returns per-sample losses (N,); create_loss averages them (weighted by class when asked)
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
            return F.cross_entropy(logits, target, label_smoothing=label_smoothing, reduction="none")
        probs = as_probabilities(target, logits.shape[1], label_smoothing)
        return -(probs * F.log_softmax(logits, dim=1)).sum(dim=1)

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
        return margins.sum(dim=1)

    return loss


@LOSSES.register("kl")
def kl_divergence(label_smoothing: float = 0.0) -> LossFn:
    """KL(t || softmax(s)) = sum_j t_j (log t_j - log p_j): cross-entropy minus the target's entropy."""

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        probs = as_probabilities(target, logits.shape[1], label_smoothing)
        return F.kl_div(F.log_softmax(logits, dim=1), probs, reduction="none").sum(dim=1)

    return loss


def sample_weights(target: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor:
    """Each sample's weight: its class's (w_y); a soft target t (mixup, cutmix) weighs sum_c t_c w_c,
    the mixture of its classes' weights. Label smoothing is applied after, so it never moves a weight."""
    weights = class_weights.to(target.device)
    return weights[target] if target.dim() == 1 else target.float() @ weights


def create_loss(name: str, label_smoothing: float = 0.0, class_weights: torch.Tensor | None = None) -> LossFn:
    """The batch loss: the mean of the per-sample losses L_i, or with `class_weights` w the weighted
    mean sum_i s_i L_i / sum_i s_i (s_i from `sample_weights`), which for index targets without
    smoothing is torch's cross_entropy(weight=w)."""
    per_sample = LOSSES.get(name)(label_smoothing=label_smoothing)
    if class_weights is None:
        return lambda logits, target: per_sample(logits, target).mean()

    def weighted(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        losses = per_sample(logits, target)
        if losses.dim() != 1:
            raise ConfigError(f"loss '{name}' returns a batch mean; class weights need its per-sample losses (N,)")
        weights = sample_weights(target, class_weights)
        # a batch whose every sample weighs 0 (classes weighted 0) contributes nothing instead of 0/0
        return (weights * losses).sum() / weights.sum().clamp_min(torch.finfo(weights.dtype).tiny)

    return weighted


@spec_check("loss")
def _check_loss(value: str, config: object) -> None:
    LOSSES.get(value)
