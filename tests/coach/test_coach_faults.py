"""Acceptance: planted faults, each trained briefly on tiny data; the coach (its checks before
training and its diagnosis after) names the cause, and raises no fail on a healthy run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import make_blobs, small_config

from convcoach import Trainer
from convcoach.coach import CheckBudget, run_checks
from convcoach.data import Normalizer
from convcoach.models import create_model
from convcoach.models.init import initialize

pytestmark = pytest.mark.usefixtures("single_thread")

BUDGET = CheckBudget(subset=256, overfit_steps=60, sweep_steps=8, sweep_points_per_decade=1)


def _run(config, **trainer_options) -> dict:
    config.monitor_every, config.report = 5, False
    return Trainer(config, **trainer_options).fit()["diagnosis"]


def _statuses(report) -> dict[str, str]:
    return {r.name: r.status for r in report.results}


@pytest.fixture(scope="module")
def weak_blobs(tmp_path_factory) -> Path:
    """Three classes whose square is barely brighter than the noise: few samples cannot generalize."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 100)
    images = rng.integers(0, 200, size=(300, 12, 12)).astype(np.uint8)
    for index, label in enumerate(labels):
        row, col = divmod(int(label), 2)
        images[index, row * 6 : (row + 1) * 6, col * 6 : (col + 1) * 6] += 20
    path = tmp_path_factory.mktemp("weak") / "weak.npz"
    np.savez(path, x=images, y=labels)
    return path


def test_healthy_run_raises_no_fail(blobs_npz, tmp_path):
    config = small_config(blobs_npz, tmp_path / "run", epochs=8)  # enough iterations for BatchNorm's running statistics
    report = run_checks(config, budget=BUDGET)
    assert "fail" not in _statuses(report).values()
    diagnosis = _run(config)
    assert diagnosis["verdict"] == "healthy" and diagnosis["healthy"]


def test_learning_rate_far_too_high(blobs_npz, tmp_path):
    config = small_config(blobs_npz, tmp_path / "run", optimizer="sgd", lr=50.0)
    sweep = run_checks(config, only=["lr_sweep"], budget=BUDGET).get("lr_sweep")
    assert sweep.status == "fail" and "lr 50 is too high" in sweep.message
    diagnosis = _run(config)
    assert diagnosis["verdict"] == "lr_too_high" and diagnosis["findings"][0]["severity"] == "fail"


def test_learning_rate_far_too_low(blobs_npz, tmp_path):
    config = small_config(blobs_npz, tmp_path / "run", optimizer="sgd", lr=1e-6, epochs=4)
    sweep = run_checks(config, only=["lr_sweep"], budget=BUDGET).get("lr_sweep")
    assert sweep.status == "warn" and "lr 1e-06 is too low" in sweep.message
    diagnosis = _run(config)
    assert diagnosis["verdict"] == "lr_too_low"
    assert diagnosis["facts"]["update_ratio"] < 1e-5  # the monitors' evidence


def test_deep_tanh_net_with_small_init(blobs_npz, tmp_path):
    config = small_config(
        blobs_npz,
        tmp_path / "run",
        model="mlp",
        depth=8,
        width=64,
        activation="tanh",
        init="normal:0.01",
        norm="none",
        optimizer="sgd",
        lr=0.05,
    )
    activations = run_checks(config, only=["activations"], budget=BUDGET).get("activations")
    assert activations.status == "fail" and "activations shrink towards zero by layer 2" in activations.message
    assert "init std too small" in activations.message
    diagnosis = _run(config)
    assert diagnosis["verdict"] == "vanishing" and "init std too small" in diagnosis["findings"][0]["evidence"]


def _dead_relu_net() -> nn.Module:
    torch.manual_seed(0)
    model = create_model("mlp", (1, 12, 12), 3, depth=3, width=64, activation_name="relu", norm_spec="none")
    initialize(model, "kaiming", "relu")
    for layer in model.modules():
        if isinstance(layer, nn.Linear) and layer.out_features == 64:
            nn.init.constant_(layer.bias, -20.0)  # a huge negative bias: no unit ever fires
    return model


def test_relu_net_with_a_huge_negative_bias(blobs_npz, tmp_path):
    config = small_config(
        blobs_npz, tmp_path / "run", model="mlp", depth=3, width=64, norm="none", optimizer="sgd", lr=0.05
    )
    activations = run_checks(config, model=_dead_relu_net(), only=["activations"], budget=BUDGET).get("activations")
    assert activations.status == "fail" and "dead units: 100% of the ReLU units of layer 1" in activations.message
    diagnosis = _run(config, model=_dead_relu_net())
    assert diagnosis["verdict"] == "dead_units" and diagnosis["findings"][0]["severity"] == "fail"


def test_unnormalized_0_255_inputs(blobs_npz, tmp_path):
    raw = Normalizer([0.0], [1 / 255])  # x / 255 * 255: the pixel values themselves
    config = small_config(blobs_npz, tmp_path / "run")
    normalization = run_checks(config, only=["data"], budget=BUDGET, normalizer=raw).get("data_normalization")
    assert normalization.status == "fail" and "inputs not normalized" in normalization.message
    assert normalization.details["mean"][0] > 50
    diagnosis = _run(config, normalizer=raw)
    assert diagnosis["verdict"] == "inputs_not_normalized" and diagnosis["facts"]["input_mean"] > 50


def test_preprocess_none_is_flagged(blobs_npz, tmp_path):
    config = small_config(blobs_npz, tmp_path / "run", preprocess="none")
    normalization = run_checks(config, only=["data"], budget=BUDGET).get("data_normalization")
    assert normalization.status == "warn" and "not zero-centred" in normalization.message
    assert _run(config)["verdict"] == "inputs_not_normalized"


def test_shuffled_labels(tmp_path):
    images, labels = make_blobs()
    path = tmp_path / "shuffled.npz"
    np.savez(path, x=images, y=np.random.default_rng(1).permutation(labels))
    # an mlp without BatchNorm: a few iterations of BN leave eval mode broken, which the coach reports first
    config = small_config(
        path, tmp_path / "run", model="mlp", depth=2, width=128, norm="none", epochs=6, val_fraction=0.5
    )
    probe = run_checks(config, only=["data"], budget=BUDGET).get("data_labels")
    assert probe.status == "warn" and "labels look unrelated to the images" in probe.message
    diagnosis = _run(config)
    assert diagnosis["verdict"] == "labels_no_signal"


def test_too_little_data_for_a_large_model_overfits(weak_blobs, tmp_path):
    config = small_config(
        weak_blobs,
        tmp_path / "run",
        model="mlp",
        depth=2,
        width=512,
        norm="none",
        epochs=8,
        batch_size=10,
        optimizer="sgd",
        lr=0.02,
        weight_decay=0.0,
        val_fraction=0.5,
    )
    diagnosis = _run(config)
    assert diagnosis["verdict"] == "overfitting"
    assert diagnosis["facts"]["train_acc"] == 1.0 and diagnosis["facts"]["gap"] > 0.2


def test_too_few_iterations_for_batchnorm_running_statistics(blobs_npz, tmp_path):
    # 12 iterations at momentum 0.1 leave the running statistics far from the data's: eval mode breaks
    diagnosis = _run(small_config(blobs_npz, tmp_path / "run", epochs=3, seed=1))
    assert diagnosis["verdict"] == "eval_mismatch"
    assert diagnosis["facts"]["mode_train_acc"] - diagnosis["facts"]["mode_eval_acc"] > 0.5
