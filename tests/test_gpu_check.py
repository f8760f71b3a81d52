"""benchmarks/gpu_check.sh as far as a CPU allows: its dry-run plan and its JSON when CUDA is absent."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from convcoach.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
STEPS = ["tests", "default", "compile", "long", "ddp", "resume"]


def test_dry_run_writes_the_plan_without_installing_or_training(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "gpu_check: dry run; would install:" in done.stderr
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["dry_run"] is True and list(result["steps"]) == STEPS
    assert all(step["status"] == "planned" for step in result["steps"].values())
    commands = {name: step["command"] for name, step in result["steps"].items()}
    assert commands["tests"].endswith("-m pytest -m cuda -q -p no:cacheprovider tests")
    assert "--device cuda" in commands["default"] and "--compile" in commands["compile"]
    assert "--recipe long --time-budget 3" in commands["long"]
    assert "torch.distributed.run --standalone --nproc_per_node 1 -m convcoach train" in commands["ddp"]
    assert commands["resume"].endswith("--quiet") and "--resume" in commands["resume"]
    for command in [c for step in commands.values() for c in step.split("; ") if " -m convcoach " in c]:
        build_parser().parse_args(shlex.split(command.split(" -m convcoach ", 1)[1]))  # every flag is one train has
    # the default net's training FLOPs per image (forward + backward), as utilization.py counts them
    assert result["flops_per_image"] == pytest.approx(33.5e6, rel=0.02)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the path taken without a GPU")
def test_without_cuda_every_gpu_step_is_skipped_and_the_check_passes(tmp_path):
    out = tmp_path / "check.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--out", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["cuda"] is False and result["gpu"] is None and result["bf16_matmul_tflops"] is None
    assert {step["status"] for step in result["steps"].values()} == {"skipped: no CUDA device"}
    assert result["ok"] is True and "default_ratio_of_peak" not in result
