"""Every registered model, with every other option at its default, learns Fashion-MNIST: where the
shipped LR was never measured for the model, --lr auto's range test picks one (issue 23)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convcoach.cli import main
from convcoach.models import MODELS
from convcoach.models.imagenet import IMAGENET_ARCHITECTURES

DATA = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not (DATA / "train-images-idx3-ubyte.gz").exists(), reason="apt-get install dataset-fashion-mnist")
# the ImageNet architectures (224 px nets, AlexNet/VGG above 28 px) train from their weights in tests/transfer
@pytest.mark.parametrize("model", [name for name in MODELS.names() if name not in IMAGENET_ARCHITECTURES])
def test_every_registered_model_trains_well_above_chance_with_defaults(model, tmp_path):
    out = tmp_path / model
    code = main(
        ["train", "--model", model, "--subset", "2000", "--epochs", "2", "--tta", "none", "--no-report", "--quiet"]
        + ["--out", str(out)]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    env = json.loads((out / "env.json").read_text())
    # chance is 10%; 16 steps of batch 256 take the default ResNet to ~59%, the one-stage 'truncated' net to ~38%
    assert summary["test_accuracy"] >= 0.3, (model, summary["test_accuracy"], env["lr_choice"])
    measured = model == "resnet"  # the default LR was measured for the default BatchNorm ResNet only
    assert (env["lr_choice"] is None) == measured
    if not measured:
        assert (
            env["lr_choice"]["lr"] == pytest.approx(env["lr"])
            and "lowered the held-out loss" in env["lr_choice"]["reason"]
        )
