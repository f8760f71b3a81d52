"""The lectures' table as `auto`: data size x similarity -> strategy, with the reason; strategy names."""

from __future__ import annotations

import pytest

from convcoach.errors import ConfigError
from convcoach.transfer.strategy import Similarity, check_strategy, choose_strategy, trainable_stages

STAGES = ["stem", "stage1", "stage2", "stage3"]


def test_auto_picks_linear_for_tiny_similar_data():
    choice = choose_strategy(100, 10, Similarity(feature_accuracy=0.92, pixel_accuracy=0.85), STAGES)
    assert choice.strategy == "linear"
    assert choice.reason == (
        "auto chose 'linear': 100 training images for 10 classes (10/class, < 100: very little data); "
        "1-NN on pretrained features 92.0% >= on raw pixels 85.0% (validation): similar dataset; "
        "lecture table: very little data + similar dataset: a linear classifier on the top layer"
    )


def test_auto_picks_full_for_large_different_data_and_top_for_large_similar():
    choice = choose_strategy(50000, 10, Similarity(0.60, 0.80), STAGES)
    assert choice.strategy == "full"
    assert "50000 training images for 10 classes (5000/class, >= 100: quite a lot of data)" in choice.reason
    assert choice.reason.endswith("fine-tune a larger number of layers (all, at the backbone LR)")
    assert choose_strategy(50000, 10, Similarity(0.90, 0.80), STAGES).strategy == "top:1"


def test_auto_picks_stages_for_tiny_different_data():
    choice = choose_strategy(100, 10, Similarity(0.77, 0.93), STAGES)
    assert choice.strategy == "stages"
    assert "76.9%" not in choice.reason and "77.0% < on raw pixels 93.0%" in choice.reason


def test_top_k_unfreezes_the_last_k_stages():
    assert trainable_stages("linear", STAGES) == []
    assert trainable_stages("top:2", STAGES) == ["stage2", "stage3"]
    assert trainable_stages("full", STAGES) == STAGES


def test_bad_strategies_are_config_errors():
    with pytest.raises(ConfigError, match="unknown strategy 'fine'; known: linear, top:K, full, stages, auto"):
        check_strategy("fine")
    with pytest.raises(
        ConfigError, match=r"strategy top:5: this network has 4 stages \(stem, stage1, stage2, stage3\); K must be 1..4"
    ):
        trainable_stages("top:5", STAGES)
