"""The CUDA path, run where a GPU is (benchmarks/gpu_check.sh runs `pytest -m cuda`); skipped here.

Each test trains the tiny blobs set for a few seconds on the GPU and checks what only a GPU run shows:
the data living on the device, the precision and memory format chosen, the fp16 loss scale carried
across a resume, and a CUDA checkpoint that evaluates the same on the CPU."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import small_config

from convcoach import Trainer, train
from convcoach.cli import main
from convcoach.data import parse_augment
from convcoach.train.checkpoint import load_checkpoint

pytestmark = pytest.mark.cuda


def test_a_cuda_run_keeps_its_data_on_the_gpu_and_learns(tmp_path, blobs_npz):
    trainer = Trainer(small_config(blobs_npz, tmp_path / "run", device="cuda", precision="auto", epochs=4))
    assert trainer.train_loader.images.device.type == "cuda" and trainer.train_loader.images.dtype == torch.uint8
    summary = trainer.fit()
    env = json.loads((tmp_path / "run" / "env.json").read_text())
    assert env["device"].startswith("cuda")
    assert env["precision"] == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    assert summary["test_accuracy"] >= 0.9


def test_channels_last_reaches_the_convolutions(tmp_path, blobs_npz):
    trainer = Trainer(small_config(blobs_npz, tmp_path / "run", device="cuda", channels_last=True, epochs=1))
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_cuda and conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_batched_augmentation_runs_on_the_gpu():
    augmenter = parse_augment(["hflip", "translate:2", "erase:0.5"])
    x = torch.rand(64, 1, 12, 12, device="cuda")
    out = augmenter(x, torch.Generator(device="cuda").manual_seed(0))
    assert out.is_cuda and out.shape == x.shape and not torch.equal(out, x)


def test_fp16_loss_scale_is_checkpointed_and_resumed(tmp_path, blobs_npz):
    run = tmp_path / "run"
    train(small_config(blobs_npz, run, device="cuda", precision="fp16", epochs=2))
    scale = load_checkpoint(run / "last.pt")["scaler"]["scale"]
    assert scale > 0
    summary = train(small_config(blobs_npz, run, device="cuda", precision="fp16", epochs=3, resume=str(run)))
    assert summary["epochs_run"] == 3 and summary["test_accuracy"] >= 0.8


def test_a_cuda_checkpoint_evaluates_the_same_on_the_cpu(tmp_path, blobs_npz):
    run = tmp_path / "run"
    summary = train(small_config(blobs_npz, run, device="cuda", epochs=3, tta="none"))
    assert main(["eval", "--checkpoint", str(run), "--device", "cpu", "--out", str(tmp_path / "e")]) == 0
    cpu = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert abs(cpu["accuracy"] - summary["test_accuracy"]) <= 1 / 60  # one image of the 60 may flip
