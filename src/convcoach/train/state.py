"""What a checkpoint holds and how a run is restored from it: the loop's counters, the model, optimizer,
scheduler, loader position, RNG states and every callback's state under its own key."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from .. import __version__
from .callbacks import Callback
from .checkpoint import load_model_state
from .distributed import unwrap

if TYPE_CHECKING:
    from .loop import Trainer

log = logging.getLogger("convcoach")


@dataclass
class TrainState:
    """The loop's own counters and record, saved in every checkpoint."""

    epoch: int = 0  # epochs completed
    step: int = 0  # iterations completed
    elapsed: float = 0.0  # training seconds, summed over resumes
    # a mid-epoch checkpoint's running sums: the epoch's loss sum, correct count and images seen so far
    partial: list[float] = field(default_factory=list)
    stop_reason: str | None = None
    stop_message: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def callback_keys(callbacks: list[Callback]) -> list[str]:
    """Each callback's key in a checkpoint: its `state_key`, and `KEY#2`, `KEY#3` for the second and
    third callback with the same key, so two instances of one class never overwrite each other's state."""
    seen: Counter[str] = Counter()
    keys = []
    for callback in callbacks:
        seen[callback.state_key] += 1
        count = seen[callback.state_key]
        keys.append(callback.state_key if count == 1 else f"{callback.state_key}#{count}")
    return keys


def checkpoint_payload(trainer: Trainer) -> dict[str, Any]:
    """Everything last.pt needs to continue the run exactly; best.pt holds the same."""
    device = trainer.device
    cuda_rng = [torch.cuda.get_rng_state(device)] if device.type == "cuda" else []
    return {
        "config": trainer.config.to_dict(),
        "model": trainer.spec,
        "classes": list(trainer.data.classes),
        "normalizer": trainer.normalizer.state_dict(),
        "model_state": unwrap(trainer.model).state_dict(),
        "optimizer_state": trainer.optimizer.state_dict(),
        "scheduler_state": trainer.scheduler.state_dict(),
        "loader_state": trainer.train_loader.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "cuda": cuda_rng},
        # fp16's loss scale and growth count
        "scaler": trainer.scaler.state_dict() if trainer.scaler is not None else None,
        "precision": {"device": device.type, "chosen": trainer.precision},
        "callbacks": {key: c.state_dict() for key, c in zip(callback_keys(trainer.callbacks), trainer.callbacks)},
        "state": asdict(trainer.state),
        "versions": {"convcoach": __version__, "torch": str(torch.__version__)},
    }


def restore(trainer: Trainer, payload: dict[str, Any]) -> None:
    """Put a run back where `payload` (a last.pt) left it."""
    load_model_state(unwrap(trainer.model), payload["model_state"], str(trainer.run_dir / "last.pt"))
    trainer.optimizer.load_state_dict(payload["optimizer_state"])
    trainer.scheduler.load_state_dict(payload["scheduler_state"])
    trainer.train_loader.load_state_dict(payload["loader_state"])
    torch.set_rng_state(payload["rng"]["torch"])
    if payload["rng"]["cuda"] and trainer.device.type == "cuda":  # this rank's own GPU (all ranks share one seed)
        torch.cuda.set_rng_state(payload["rng"]["cuda"][0], trainer.device)
    if trainer.scaler is not None and payload.get("scaler"):
        trainer.scaler.load_state_dict(payload["scaler"])
    for key, callback in zip(callback_keys(trainer.callbacks), trainer.callbacks):
        state = payload["callbacks"].get(key)
        if state is not None:
            callback.load_state_dict(state)
    trainer.state = TrainState(**payload["state"])
    trainer.saved_step = trainer.state.step
    log.info("resumed %s at epoch %d (step %d)", trainer.run_dir, trainer.state.epoch, trainer.state.step)
