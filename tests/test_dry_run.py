"""`convcoach train --dry-run`: the resolved options, data, model summary and plan, with nothing trained or written."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import small_config

from convcoach import Trainer
from convcoach.cli import main
from convcoach.models.summary import layer_table


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default runs/<timestamp> would land here
    return tmp_path


def _dry_run(blobs_npz, *flags: str) -> list[str]:
    return ["train", "--dry-run", "--data", f"npz:{blobs_npz}", "--model", "cnn", "--width", "8", *flags]


def test_dry_run_prints_options_data_model_and_plan_and_writes_nothing(blobs_npz, in_tmp, capsys):
    flags = ["--depth", "2", "--batch-size", "32", "--accumulate", "2", "--lr", "0.1", "--epochs", "3"]
    assert main([*_dry_run(blobs_npz, *flags), "--out", str(in_tmp / "run")]) == 0
    out = capsys.readouterr().out
    assert "\n  batch_size: 32\n  base_batch_size: null\n  accumulate: 2\n" in out  # the options, as config.yaml
    assert f"data: npz:{blobs_npz}, 3 classes, 1x12x12 (CxHxW) images; train 138, val 6, test 36" in out
    assert re.search(r"\n  0 +Conv2d +8x12x12 +72 +20\.7K\n", out)  # 8 3x3 filters: 72 weights, 2x72x144 FLOPs
    assert "\n7,019 parameters (27.4 KiB in fp32), 440K FLOPs per image (forward; a multiply-add counts 2)" in out
    assert "length: 3 epochs; 2 optimizer steps per epoch (batch 32 x accumulate 2 = 64 images per step)" in out
    assert "optimizer muon, lr 0.1 at peak, schedule onecycle" in out
    assert not (in_tmp / "run").exists() and not (in_tmp / "runs").exists()


def test_dry_run_without_epochs_states_the_time_budget_rule(blobs_npz, in_tmp, capsys):
    assert main(_dry_run(blobs_npz, "--lr", "0.1")) == 0
    assert "length: as many of 30 epochs as fit in 4.75 minutes of wall time" in capsys.readouterr().out
    assert not (in_tmp / "runs").exists()


def test_dry_run_validates_the_options_first(blobs_npz, in_tmp, capsys):
    assert main(_dry_run(blobs_npz, "--clip-grad", "0")) == 2
    assert capsys.readouterr().err == "convcoach: error: clip_grad must be > 0, got 0.0\n"


def test_dry_run_of_a_resume_shows_the_saved_options(blobs_npz, tmp_path, capsys, single_thread):
    Trainer(small_config(blobs_npz, tmp_path / "run", epochs=1, report=False, seed=7)).fit()
    before = sorted(path.name for path in (tmp_path / "run").iterdir())
    assert main(["train", "--dry-run", "--resume", str(tmp_path / "run"), "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "\n  seed: 7\n" in out and "length: 2 epochs;" in out
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == before


def test_the_layer_table_counts_what_the_model_holds_and_computes():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten())
    model.append(torch.nn.Linear(4 * 6 * 6, 5))
    table = layer_table(model, (1, 6, 6))
    assert [(layer.name, layer.output, layer.parameters) for layer in table.layers] == [
        ("0", (4, 6, 6), 40),
        ("2", (144,), 0),  # the ReLU keeps its input's shape: not listed
        ("3", (5,), 725),
    ]
    assert [layer.flops for layer in table.layers] == [2 * 4 * 9 * 36, 0, 2 * 144 * 5]
    assert table.parameters == 765 and table.flops == 2 * 4 * 9 * 36 + 2 * 144 * 5
