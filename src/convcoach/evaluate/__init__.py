"""Evaluation figures beyond accuracy: confusion matrix, per-class precision/recall, top-k, calibration."""

from .metrics import (
    ClassificationMetrics,
    ReliabilityBins,
    compute_metrics,
    confident_mistakes,
    confusion_matrix,
    expected_calibration_error,
    per_class_scores,
    reliability_bins,
    top_k_accuracy,
)

__all__ = [
    "ClassificationMetrics",
    "ReliabilityBins",
    "compute_metrics",
    "confident_mistakes",
    "confusion_matrix",
    "expected_calibration_error",
    "per_class_scores",
    "reliability_bins",
    "top_k_accuracy",
]
