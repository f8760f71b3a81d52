"""Callback state in checkpoints is keyed per instance, and the hook between backward and step runs."""

from __future__ import annotations

from typing import Any

import torch
from conftest import small_config

from convcoach import Trainer
from convcoach.train.callbacks import Callback
from convcoach.train.checkpoint import load_checkpoint
from convcoach.train.state import callback_keys


class Counter(Callback):
    def __init__(self, step: int) -> None:
        self.step, self.count = step, 0

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        self.count += self.step

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = state["count"]


class GradNorms(Callback):
    """Reads the gradients where clipping would: after backward, before the step."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_before_optimizer_step(self, trainer: Trainer) -> None:
        grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))


def test_two_instances_of_one_class_get_their_own_keys():
    assert callback_keys([Counter(1), Counter(2), GradNorms(), Counter(3)]) == [
        "Counter",
        "Counter#2",
        "GradNorms",
        "Counter#3",
    ]


def test_two_instances_keep_their_own_state_through_a_resume(blobs_npz, tmp_path):
    Trainer(small_config(blobs_npz, tmp_path / "run", epochs=2), callbacks=[Counter(1), Counter(10)]).fit()
    saved = load_checkpoint(tmp_path / "run" / "last.pt")["callbacks"]
    assert saved["Counter"] == {"count": 8} and saved["Counter#2"] == {"count": 80}  # 4 steps an epoch
    first, second = Counter(1), Counter(10)
    resumed = small_config(blobs_npz, tmp_path / "run", epochs=3)
    resumed.resume = str(tmp_path / "run")
    Trainer(resumed, callbacks=[first, second]).fit()
    assert (first.count, second.count) == (12, 120)


def test_before_optimizer_step_sees_the_gradients_of_every_step(blobs_npz, tmp_path):
    watcher = GradNorms()
    Trainer(small_config(blobs_npz, tmp_path / "run", epochs=2), callbacks=[watcher]).fit()
    assert len(watcher.norms) == 8
    assert all(norm > 0 for norm in watcher.norms)
