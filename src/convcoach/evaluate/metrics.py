"""Classification metrics from predicted probabilities: confusion matrix, per-class scores, top-k, calibration."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(C, C) int64 counts; row = true class, column = predicted class."""
    index = labels.long() * num_classes + predictions.long()
    return torch.bincount(index, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_scores(matrix: torch.Tensor) -> dict[str, list[float]]:
    """Precision TP/(TP+FP), recall TP/(TP+FN) (= the class's accuracy), F1 and support from a confusion matrix.

    A class never predicted has precision 0; a class absent from the labels has recall 0."""
    matrix = matrix.double()
    true_positive = matrix.diag()
    predicted = matrix.sum(dim=0)
    support = matrix.sum(dim=1)
    precision = torch.where(predicted > 0, true_positive / predicted.clamp_min(1), torch.zeros_like(predicted))
    recall = torch.where(support > 0, true_positive / support.clamp_min(1), torch.zeros_like(support))
    both = precision + recall
    f1 = torch.where(both > 0, 2 * precision * recall / both.clamp_min(1e-12), torch.zeros_like(both))
    return {
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.long().tolist(),
    }


def top_k_accuracy(probabilities: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Fraction of samples whose true class is among the k most probable (k is clipped to the class count)."""
    if len(labels) == 0:
        return 0.0
    k = max(1, min(k, probabilities.shape[1]))
    top = probabilities.topk(k, dim=1).indices
    return (top == labels.view(-1, 1)).any(dim=1).double().mean().item()


@dataclass
class ReliabilityBins:
    """Equal-width confidence bins: edges (B+1), and per bin the sample count, mean confidence and accuracy."""

    edges: list[float]
    counts: list[int]
    confidence: list[float]
    accuracy: list[float]

    def to_dict(self) -> dict[str, list]:
        return {"edges": self.edges, "counts": self.counts, "confidence": self.confidence, "accuracy": self.accuracy}


def reliability_bins(confidences: torch.Tensor, correct: torch.Tensor, bins: int = 10) -> ReliabilityBins:
    """Bin b holds confidences in (b/B, (b+1)/B]; empty bins have confidence and accuracy 0."""
    confidences = confidences.double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    index = torch.bucketize(confidences, edges[1:-1], right=False)  # edges[b-1] < c <= edges[b]
    counts = torch.bincount(index, minlength=bins).double()
    conf_sum = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, confidences)
    correct_sum = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, correct.double())
    safe = counts.clamp_min(1)
    return ReliabilityBins(
        edges.tolist(), counts.long().tolist(), (conf_sum / safe).tolist(), (correct_sum / safe).tolist()
    )


def expected_calibration_error(binned: ReliabilityBins) -> float:
    """ECE = sum_b |B_b|/n * |acc(B_b) - conf(B_b)| (Naeini et al. 2015; Guo et al. 2017)."""
    total = sum(binned.counts)
    if total == 0:
        return 0.0
    return sum(n / total * abs(acc - conf) for n, acc, conf in zip(binned.counts, binned.accuracy, binned.confidence))


def confident_mistakes(probabilities: torch.Tensor, labels: torch.Tensor, count: int = 16) -> list[int]:
    """Indices of the wrong predictions, most confident first."""
    confidence, predicted = probabilities.max(dim=1)
    wrong = (predicted != labels).nonzero().flatten()
    order = confidence[wrong].argsort(descending=True, stable=True)
    return wrong[order][:count].tolist()


@dataclass
class ClassificationMetrics:
    """Everything `convcoach eval` reports about one split."""

    accuracy: float
    top_k: dict[int, float]
    matrix: torch.Tensor
    scores: dict[str, list[float]]
    reliability: ReliabilityBins
    ece: float
    mistakes: list[int]
    predictions: torch.Tensor
    labels: torch.Tensor
    confidences: torch.Tensor

    def to_dict(self, classes: list[str]) -> dict:
        per_class = {
            name: {"precision": p, "recall": r, "accuracy": r, "f1": f, "support": s}
            for name, p, r, f, s in zip(
                classes, self.scores["precision"], self.scores["recall"], self.scores["f1"], self.scores["support"]
            )
        }
        return {
            "accuracy": self.accuracy,
            "top_k_accuracy": {str(k): v for k, v in self.top_k.items()},
            "per_class": per_class,
            "confusion_matrix": {"classes": list(classes), "rows_true_columns_predicted": self.matrix.tolist()},
            "expected_calibration_error": self.ece,
            "reliability": self.reliability.to_dict(),
            "confident_mistakes": [
                {
                    "index": i,
                    "true": classes[int(self.labels[i])],
                    "predicted": classes[int(self.predictions[i])],
                    "confidence": float(self.confidences[i]),
                }
                for i in self.mistakes
            ],
        }


def compute_metrics(
    probabilities: torch.Tensor, labels: torch.Tensor, top_k: int = 5, bins: int = 10, mistakes: int = 16
) -> ClassificationMetrics:
    """All metrics from (N, C) probabilities and (N,) labels."""
    num_classes = probabilities.shape[1]
    confidences, predictions = probabilities.max(dim=1)
    correct = predictions == labels
    matrix = confusion_matrix(predictions, labels, num_classes)
    binned = reliability_bins(confidences, correct, bins)
    ks = sorted({1, max(1, min(top_k, num_classes))})
    return ClassificationMetrics(
        accuracy=correct.double().mean().item() if len(labels) else 0.0,
        top_k={k: top_k_accuracy(probabilities, labels, k) for k in ks},
        matrix=matrix,
        scores=per_class_scores(matrix),
        reliability=binned,
        ece=expected_calibration_error(binned),
        mistakes=confident_mistakes(probabilities, labels, mistakes),
        predictions=predictions,
        labels=labels,
        confidences=confidences,
    )
