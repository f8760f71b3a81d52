"""Device names: `--device` of train, eval and predict resolves to a real device or a one-line error."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import small_config

from convcoach import Trainer
from convcoach.cli import main
from convcoach.errors import ConfigError
from convcoach.precision import resolve_device


def test_auto_and_cpu_resolve_to_the_cpu_here():
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "mps", "cpu:x", ""])
def test_a_name_that_is_no_cpu_or_cuda_device_is_an_error_listing_the_valid_ones(name):
    with pytest.raises(ConfigError, match=f"device must be auto, cpu, cuda or cuda:N; got '{name}'"):
        resolve_device(name)


def test_a_cuda_index_beyond_the_machines_gpus_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match=r"device 'cuda:2' does not exist: this machine has 2 CUDA device\(s\)"):
        resolve_device("cuda:2")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_eval_and_predict_take_a_device(blobs_npz, tmp_path, capsys, single_thread):
    run = tmp_path / "run"
    summary = Trainer(small_config(blobs_npz, run, epochs=2, report=False)).fit()
    assert main(["eval", "--checkpoint", str(run), "--device", "cpu", "--out", str(tmp_path / "e")]) == 0
    assert json.loads((tmp_path / "e" / "summary.json").read_text())["accuracy"] == pytest.approx(
        summary["test_accuracy"]
    )
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run), "--device", "cuda", "--out", str(tmp_path / "e2")]) == 2
    assert "device 'cuda' requested but CUDA is not available; use --device cpu or auto" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(run), "--device", "tpu", "x.png"]) == 2
    assert "device must be auto, cpu, cuda or cuda:N; got 'tpu'" in capsys.readouterr().err
