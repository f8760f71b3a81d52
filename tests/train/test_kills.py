"""SIGKILL at any moment of a run: before its first checkpoint, mid-epoch, while an epoch-end last.pt is
written, during the final test pass and while the report is written; `convcoach train --resume` then ends
with the uninterrupted run's weights and metrics, and no temporary file is left behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_resume import _config, _rows

from convcoach.train.checkpoint import load_checkpoint

# a child process trains through the Python API and kills itself at `point`: "step:N" at the end of
# iteration N, "test" at the final test pass's first forward, "write:NAME#K" when the K-th write of NAME is
# complete in its temporary file but not yet renamed into place (the moment a kill leaves the file behind)
CHILD = """
import json, os, signal, sys
from pathlib import Path
from convcoach import Trainer
from convcoach.config import from_dict
from convcoach.train.callbacks import Callback

config, point = from_dict(json.loads(sys.argv[1])), sys.argv[2]

def die(*_):
    os.kill(os.getpid(), signal.SIGKILL)

class Kill(Callback):
    order = Callback.Priority.DIAGNOSIS + 1  # after the checkpointer and the coach, before the report

    def on_batch_end(self, trainer, loss):
        if point == f"step:{trainer.state.step}":
            die()

    def on_train_end(self, trainer):
        if point == "test":
            trainer.model.register_forward_hook(die)

if point.startswith("write:"):
    name, count = point[len("write:"):].split("#")
    rename, seen = os.replace, []

    def replace(source, target):
        seen.extend([1] if Path(target).name == name else [])
        if Path(target).name == name and len(seen) == int(count):
            die()
        rename(source, target)

    os.replace = replace
Trainer(config, callbacks=[Kill()]).fit()
"""

# test_resume's run (mixup, EMA, augmentation: all restored from last.pt) in one thread, as both processes
# must compute alike; without the monitors, whose resume test_resume covers, to keep the 11 processes quick
# augmentation and dropout: their random draws must continue where the killed run left them
OPTIONS = {"threads": 1, "monitors": False, "augment": ["hflip", "translate:1"], "dropout": 0.2}
# summary.json's figures that a resume must reproduce exactly
SUMMARY_KEYS = ("epochs_run", "steps", "best_epoch", "best_val_acc", "test_accuracy", "test_loss", "final")


def _train(config, point: str = "none") -> subprocess.CompletedProcess:
    values = json.dumps(config.to_dict())
    return subprocess.run([sys.executable, "-c", CHILD, values, point], capture_output=True, text=True, timeout=120)


def _summary(run: Path) -> dict:
    summary = json.loads((run / "summary.json").read_text())
    summary["final"] = {k: v for k, v in summary["final"].items() if k != "time"}
    return {key: summary[key] for key in SUMMARY_KEYS}


@pytest.fixture(scope="module")
def reference(blobs, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("reference") / "run"
    result = _train(_config(blobs, run, **OPTIONS))
    assert result.returncode == 0, result.stderr[-2000:]
    return run


# 4 iterations an epoch, 3 epochs, last.pt every 3 iterations (3, 6, 9) and at the epoch ends (4, 8, 12):
# (kill point, report, what the directory holds before the resume)
KILLS = {
    "before_first_checkpoint": ("step:2", False, "no last.pt"),
    "mid_epoch": ("step:7", False, "last.pt at iteration 6"),
    # best.pt is renamed first, then last.pt: killed with last.pt of epoch 2 written but not renamed
    "epoch_end": ("write:last.pt#4", False, ".last.pt.*.tmp"),
    "final_test_pass": ("test", False, "last.pt at iteration 12"),
    "report": ("write:report.html#1", True, ".report.html.*.tmp"),
}


@pytest.mark.parametrize("moment", list(KILLS))
def test_a_run_killed_at_any_moment_resumes_to_the_uninterrupted_result(blobs, reference, tmp_path, moment):
    point, report, left = KILLS[moment]
    run = tmp_path / "run"
    killed = _train(_config(blobs, run, **OPTIONS, report=report), point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (run / "summary.json").exists() == report  # written just before the report
    if left == "no last.pt":
        assert (run / "config.yaml").is_file() and not (run / "last.pt").exists()
    elif left.startswith("last.pt"):
        assert f"last.pt at iteration {load_checkpoint(run / 'last.pt')['state']['step']}" == left
    else:
        assert len(list(run.glob(left))) == 1  # what a kill mid-write leaves

    resumed = subprocess.run(
        [sys.executable, "-m", "convcoach", "train", "--resume", str(run), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _summary(run) == _summary(reference)
    ours, theirs = load_checkpoint(run / "best.pt"), load_checkpoint(reference / "best.pt")
    assert ours["model_state"].keys() == theirs["model_state"].keys()
    assert all(torch.equal(ours["model_state"][k], theirs["model_state"][k]) for k in theirs["model_state"])
    assert _rows(run) == _rows(reference)
    assert list(run.glob(".*.tmp")) == []
    assert (run / "report.html").is_file() == report
