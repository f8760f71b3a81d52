"""One short end-to-end run on the real Fashion-MNIST (Debian's dataset-fashion-mnist), CLI to eval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convcoach.cli import main

DATA = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "train-images-idx3-ubyte.gz").exists(), reason="apt-get install dataset-fashion-mnist")
def test_default_model_on_real_fashion_mnist_subset_then_eval(tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--subset",
                "3000",
                "--epochs",
                "3",
                "--batch-size",
                "64",
                "--quiet",
                "--no-report",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["train"] == 3000 and summary["data"]["val"] == 3000 and summary["data"]["test"] == 10000
    assert summary["data"]["classes"][0] == "T-shirt/top"
    assert summary["test_accuracy"] > 0.75  # 3 epochs on 3,000 images; a broken pipeline stays near 0.10
    assert main(["eval", "--checkpoint", str(run / "best.pt"), "--out", str(tmp_path / "eval")]) == 0
    evaluated = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert evaluated["accuracy"] == pytest.approx(summary["test_accuracy_without_tta"])
