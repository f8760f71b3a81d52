"""Evaluation metrics on hand-made predictions: confusion counts, per-class scores, top-k, ECE, mistakes."""

from __future__ import annotations

import pytest
import torch

from convcoach.evaluate.metrics import (
    compute_metrics,
    confident_mistakes,
    confusion_matrix,
    expected_calibration_error,
    per_class_scores,
    reliability_bins,
    top_k_accuracy,
)


def test_confusion_matrix_counts_a_hand_made_prediction_set():
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    predictions = torch.tensor([0, 1, 1, 1, 0, 2, 2])
    matrix = confusion_matrix(predictions, labels, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]  # row = true, column = predicted
    scores = per_class_scores(matrix)
    assert scores["precision"] == pytest.approx([1 / 2, 2 / 3, 1.0])
    assert scores["recall"] == pytest.approx([1 / 2, 1.0, 2 / 3])
    assert scores["f1"] == pytest.approx([0.5, 0.8, 0.8])
    assert scores["support"] == [2, 2, 3]


def test_a_class_never_predicted_has_precision_zero_not_nan():
    matrix = confusion_matrix(torch.tensor([0, 0]), torch.tensor([0, 1]), 3)
    scores = per_class_scores(matrix)
    assert scores["precision"] == [0.5, 0.0, 0.0]
    assert scores["recall"] == [1.0, 0.0, 0.0]


def test_top_k_accuracy_counts_the_true_class_among_the_k_most_probable():
    probabilities = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    labels = torch.tensor([0, 1, 2, 2])
    assert top_k_accuracy(probabilities, labels, 1) == pytest.approx(0.25)
    assert top_k_accuracy(probabilities, labels, 2) == pytest.approx(0.75)
    assert top_k_accuracy(probabilities, labels, 10) == 1.0  # clipped to the class count


def test_expected_calibration_error_of_a_hand_made_example():
    # bin (0.9, 1]: 4 samples at confidence 0.95, 3 right -> |0.75 - 0.95| = 0.20
    # bin (0.6, 0.7]: 2 samples at 0.65 and 0.7 (right edge included), both right -> |1 - 0.675| = 0.325
    confidences = torch.tensor([0.95, 0.95, 0.95, 0.95, 0.65, 0.7])
    correct = torch.tensor([1, 1, 1, 0, 1, 1], dtype=torch.bool)
    bins = reliability_bins(confidences, correct, 10)
    assert bins.counts == [0, 0, 0, 0, 0, 0, 2, 0, 0, 4]
    assert bins.accuracy[9] == pytest.approx(0.75) and bins.confidence[6] == pytest.approx(0.675)
    assert expected_calibration_error(bins) == pytest.approx(4 / 6 * 0.20 + 2 / 6 * 0.325)


def test_perfectly_calibrated_predictions_have_zero_ece():
    confidences = torch.full((10,), 0.8)
    correct = torch.tensor([1] * 8 + [0] * 2, dtype=torch.bool)
    assert expected_calibration_error(reliability_bins(confidences, correct)) == pytest.approx(
        0.0, abs=1e-6
    )  # 0.8 in float32


def test_confident_mistakes_are_the_wrong_predictions_most_confident_first():
    probabilities = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.95, 0.05], [0.7, 0.3]])
    labels = torch.tensor([1, 1, 0, 0, 1])
    assert confident_mistakes(probabilities, labels) == [0, 2, 4]
    assert confident_mistakes(probabilities, labels, count=1) == [0]


def test_compute_metrics_summary_names_classes():
    probabilities = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    summary = compute_metrics(probabilities, torch.tensor([0, 1, 1]), top_k=5).to_dict(["cat", "dog"])
    assert summary["accuracy"] == pytest.approx(2 / 3)
    assert summary["top_k_accuracy"] == {"1": pytest.approx(2 / 3), "2": 1.0}
    assert summary["confusion_matrix"]["rows_true_columns_predicted"] == [[1, 0], [1, 1]]
    assert summary["per_class"]["dog"] == {
        "precision": 1.0,
        "recall": 0.5,
        "accuracy": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert summary["confident_mistakes"] == [
        {"index": 2, "true": "dog", "predicted": "cat", "confidence": pytest.approx(0.6)}
    ]
