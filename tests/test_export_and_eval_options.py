"""`convcoach export --fuse-bn`, `eval --fuse-bn` and `eval --tta` on one tiny trained run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_blobs

from convcoach.cli import main
from convcoach.infer import evaluate_split, evaluate_trained, load_split, load_trained
from convcoach.models.fuse import count_batchnorms
from convcoach.train.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    x, y = make_blobs()
    np.savez(root / "blobs.npz", x=x, y=y)
    code = main(
        [
            "train",
            "--data",
            f"npz:{root / 'blobs.npz'}",
            "--model",
            "cnn",
            "--depth",
            "2",
            "--width",
            "8",
            "--epochs",
            "4",
            "--batch-size",
            "32",
            "--lr",
            "0.05",
            "--quiet",
            "--no-report",
            "--no-monitors",
            "--augment",
            "translate:1,jitter:0.2",
            "--out",
            str(root / "run"),
        ]
    )
    assert code == 0
    return root / "run"


def test_export_with_fused_batchnorm_reloads_with_equal_outputs(run_dir, tmp_path, capsys):
    out = tmp_path / "model.pt"
    assert main(["export", "--checkpoint", str(run_dir), "--fuse-bn", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "5 BatchNorm layers folded (0 left)" in printed  # 4 conv blocks and the hidden FC layer
    payload = load_checkpoint(out)
    assert payload["fused_bn"] is True
    assert "optimizer_state" not in payload and not any("running_mean" in key for key in payload["model_state"])
    original, exported = load_trained(run_dir), load_trained(out)
    assert count_batchnorms(exported.model) == 0
    x = torch.randn(16, *original.in_shape)
    with torch.no_grad():
        assert (original.model(x) - exported.model(x)).abs().max().item() < 1e-4
    assert evaluate_trained(exported).accuracy == pytest.approx(evaluate_trained(original).accuracy)


def test_eval_fuse_bn_gives_the_same_accuracy(run_dir, tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(run_dir), "--out", str(tmp_path / "plain")]) == 0
    assert main(["eval", "--checkpoint", str(run_dir), "--fuse-bn", "--out", str(tmp_path / "fused")]) == 0
    plain = json.loads((tmp_path / "plain" / "summary.json").read_text())
    fused = json.loads((tmp_path / "fused" / "summary.json").read_text())
    assert fused["fused_bn"] is True
    assert fused["accuracy"] == pytest.approx(plain["accuracy"]) and fused["loss"] == pytest.approx(
        plain["loss"], abs=1e-5
    )


def test_eval_tta_reports_accuracy_with_and_without(run_dir, tmp_path, capsys):
    out = tmp_path / "tta"
    assert main(["eval", "--checkpoint", str(run_dir), "--tta", "10crop", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    trained = load_trained(run_dir)
    split = load_split(trained)
    plain, with_tta = evaluate_split(trained, split), evaluate_split(trained, split, tta="10crop")
    assert summary["tta"] == "10crop"
    assert summary["accuracy_without_tta"] == pytest.approx(plain.accuracy)
    assert summary["accuracy"] == pytest.approx(with_tta.accuracy)
    assert summary["tta_gain"] == pytest.approx(with_tta.accuracy - plain.accuracy)
    assert "without test-time augmentation" in capsys.readouterr().out


def test_random_tta_fits_the_runs_own_augmentation_and_is_seeded(run_dir):
    from convcoach.data.loader import BatchLoader
    from convcoach.evaluate.tta import training_augmenter

    trained = load_trained(run_dir)
    split = load_split(trained)
    first, second = evaluate_split(trained, split, tta="random:3"), evaluate_split(trained, split, tta="random:3")
    assert torch.equal(first.probabilities, second.probabilities)
    assert not torch.allclose(first.probabilities, evaluate_split(trained, split).probabilities)
    assert not trained.model.training  # the TTA wrapper leaves the loaded model in eval mode
    # the documented draws: the run's translate:1,jitter:0.2 (jitter fitted on the training split), from a
    # generator seeded with the run's seed + 2, three views per batch, softmax averaged
    augmenter = training_augmenter(trained)
    assert augmenter.specs == ["translate:1", "jitter:0.2"]
    generator = torch.Generator().manual_seed(trained.config.seed + 2)
    expected = []
    with torch.no_grad():
        for x, _ in BatchLoader(split, 512, trained.normalizer):
            views = [augmenter(x, generator) for _ in range(3)]
            expected.append(torch.stack([trained.model(v).float().softmax(1) for v in views]).mean(0))
    assert torch.allclose(first.probabilities, torch.cat(expected), atol=1e-6)


def test_eval_rejects_a_bad_tta_spec_in_one_line(run_dir, capsys):
    assert main(["eval", "--checkpoint", str(run_dir), "--tta", "5crop"]) == 2
    assert capsys.readouterr().err.startswith("convcoach: error: unknown test-time augmentation '5crop'")


@pytest.mark.parametrize(("split", "count"), [("val", 6), ("train", 138)])
def test_eval_split_evaluates_the_validation_or_training_images(run_dir, tmp_path, capsys, split, count):
    # 180 blobs, 60 per class: 12 per class to test, then val_fraction 0.05 of the 48 left: round(2.4) = 2 per class
    out = tmp_path / split
    assert main(["eval", "--checkpoint", str(run_dir), "--split", split, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    trained = load_trained(run_dir)
    chosen = load_split(trained, split=split)
    assert len(chosen) == count and summary["split"] == split
    matrix = summary["confusion_matrix"]["rows_true_columns_predicted"]
    assert sum(map(sum, matrix)) == count
    assert [sum(row) for row in matrix] == torch.bincount(chosen.labels, minlength=3).tolist()
    assert summary["accuracy"] == pytest.approx(evaluate_split(trained, chosen).accuracy)
    assert f"{split} accuracy: {summary['accuracy'] * 100:.2f}%" in capsys.readouterr().out
