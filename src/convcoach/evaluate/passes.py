"""One forward pass over a split: loss, accuracy, per-class accuracy and the predictions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..precision import autocast

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    per_class_accuracy: list[float]
    predictions: torch.Tensor  # (N,) predicted class
    labels: torch.Tensor  # (N,)
    probabilities: torch.Tensor  # (N, C)

    def summary(self, classes: list[str]) -> dict:
        return {
            "loss": self.loss,
            "accuracy": self.accuracy,
            "per_class_accuracy": {name: acc for name, acc in zip(classes, self.per_class_accuracy)},
        }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: LossFn,
    num_classes: int,
    precision: str = "fp32",
    device: torch.device | None = None,
) -> Evaluation:
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    total_loss, count = 0.0, 0
    probs, labels = [], []
    for x, y in batches:
        with autocast(precision, device):
            logits = model(x)
        logits = logits.float()
        total_loss += loss_fn(logits, y).item() * len(y)
        count += len(y)
        probs.append(logits.softmax(dim=1).cpu())
        labels.append(y.cpu())
    model.train(was_training)
    probabilities = torch.cat(probs)
    targets = torch.cat(labels)
    predictions = probabilities.argmax(dim=1)
    correct = (predictions == targets).float()
    per_class = torch.zeros(num_classes).index_add_(0, targets, correct)
    counts = torch.bincount(targets, minlength=num_classes).clamp_min(1)
    return Evaluation(
        loss=total_loss / max(count, 1),
        accuracy=correct.mean().item() if count else 0.0,
        per_class_accuracy=(per_class / counts).tolist(),
        predictions=predictions,
        labels=targets,
        probabilities=probabilities,
    )
