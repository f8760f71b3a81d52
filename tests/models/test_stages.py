"""Stages of every architecture: running stages, neck and classifier is the forward pass; truncated models."""

from __future__ import annotations

import pytest
import torch

from convcoach.errors import ConfigError
from convcoach.models import create_model
from convcoach.models.stages import split_stages

CASES = {
    "resnet": ({"width": 4}, ["stem", "stage1", "stage2", "stage3"]),
    "resnet14": ({"width": 4, "depth": 14}, ["stem", "stage1", "stage2", "stage3"]),
    "cnn": ({"depth": 2, "width": 4, "fc_width": 8}, ["stage1", "stage2", "fc1"]),
    "cnn-no-fc": ({"depth": 2, "width": 4, "fc_layers": 0, "dropout": 0.1}, ["stage1", "stage2"]),
    "vgg": ({"depth": 6, "width": 4}, ["stage1", "stage2", "stage3", "fc1"]),
    "mlp": ({"depth": 2, "width": 8}, ["fc1", "fc2"]),
    "linear": ({}, []),
}


@pytest.mark.parametrize("case", list(CASES))
def test_stages_neck_and_classifier_reproduce_the_forward_pass(case):
    options, names = CASES[case]
    model = create_model(case.removesuffix("14").removesuffix("-no-fc"), (1, 16, 16), 5, **options).eval()
    anatomy = split_stages(model)
    x = torch.randn(3, 1, 16, 16)
    assert anatomy.names == names
    assert torch.allclose(anatomy.head(anatomy.run(x)), model(x), atol=1e-5)


def test_truncated_model_keeps_stages_up_to_the_cut():
    model = create_model("truncated", (1, 16, 16), 7, base="resnet", base_options={"width": 4}, stage="stage2")
    assert split_stages(model).names == ["stem", "stage1", "stage2"]
    assert model.fc.in_features == 8  # stage2 doubles the width
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 7)


def test_truncated_at_an_unknown_stage_lists_the_stages():
    with pytest.raises(ConfigError, match="truncated: model 'cnn' has no stage 'stage9'; stages: stage1, stage2, fc1"):
        create_model("truncated", (1, 16, 16), 3, base="cnn", base_options={"depth": 2, "width": 4}, stage="stage9")
