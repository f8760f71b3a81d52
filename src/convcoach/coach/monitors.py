"""Monitors during training: every N iterations, per layer, the activation statistics (dead ReLUs,
std, saturation), gradient norms and update-to-weight ratios, as "monitor" rows in metrics.jsonl
and a summary in summary.json. Cheap: between samples a monitor costs one modulo per iteration."""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from ..registry import Registry
from ..train.callbacks import Callback, MetricsLogger, Priority
from .stats import moments, unit_stats, watched_layers

if TYPE_CHECKING:
    from ..train.loop import Trainer

MONITORS: Registry[type[SampledMonitor]] = Registry("monitor")


def _weights(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The conv/linear weights, in forward order: the layers whose learning the monitors watch."""
    return [
        (name, m.weight)
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.requires_grad
    ]


def _round(value: float) -> float:
    return float(f"{value:.4g}") if math.isfinite(value) else value


class SampledMonitor(Callback):
    """Measures at iteration 1 and every `every` iterations; rows go to the metrics log."""

    name = ""
    order = Priority.MONITORS  # after the explosion guard, before the metrics logger flushes

    def __init__(self, every: int = 50) -> None:
        self.every = every
        self.samples: list[dict[str, Any]] = []
        self.logger: MetricsLogger | None = None

    def due(self, step: int) -> bool:
        return step == 1 or step % self.every == 0

    def on_train_start(self, trainer: Trainer) -> None:
        from ..train.distributed import unwrap

        self.logger = next((c for c in trainer.callbacks if isinstance(c, MetricsLogger)), None)
        self.setup(unwrap(trainer.model))

    def setup(self, model: nn.Module) -> None: ...

    def record(self, trainer: Trainer, layers: dict[str, dict[str, float]]) -> None:
        row = {
            "kind": "monitor",
            "monitor": self.name,
            "step": trainer.state.step,
            "epoch": trainer.state.epoch,
            "layers": {name: {k: _round(v) for k, v in values.items()} for name, values in layers.items()},
        }
        self.samples.append(row)
        if self.logger is not None:
            self.logger.log(row)

    def summarize(self) -> dict[str, Any]:
        """Per layer: the median of each quantity over the samples, and the last sample."""
        if not self.samples:
            return {"samples": 0, "every": self.every}
        names = list(self.samples[-1]["layers"])
        keys = sorted({k for row in self.samples for values in row["layers"].values() for k in values})
        median = {
            name: {
                k: _round(statistics.median(v))
                for k in keys
                if (
                    v := [
                        row["layers"][name][k]
                        for row in self.samples
                        if name in row["layers"] and k in row["layers"][name]
                    ]
                )
            }
            for name in names
        }
        return {"samples": len(self.samples), "every": self.every, "median": median, "last": self.samples[-1]["layers"]}

    def on_summary(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        summary.setdefault("monitors", {})[self.name] = self.summarize()

    def state_dict(self) -> dict[str, Any]:
        return {"samples": self.samples}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.samples = list(state["samples"])


@MONITORS.register("activations")
class ActivationMonitor(SampledMonitor):
    """Per activation layer: output std, fraction of dead ReLU units (zero for the whole batch) and of
    saturated tanh/sigmoid outputs; plus the input batch's mean and std (is it normalized?)."""

    name = "activations"

    def setup(self, model: nn.Module) -> None:
        self.layers = watched_layers(model)
        self.handles: list[Any] = []
        self.captured: dict[str, dict[str, torch.Tensor]] = {}

    def on_batch_start(self, trainer: Trainer, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.due(trainer.state.step + 1):
            self.captured = {"input": moments(x.detach().float())}
            self.handles = [
                m.register_forward_hook(
                    lambda mod, inp, out, n=name: self.captured.__setitem__(n, unit_stats(mod, out))
                )
                for name, m in self.layers
            ]
        return x, y

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        if not self.handles:
            return
        for handle in self.handles:
            handle.remove()
        self.handles = []
        names = list(self.captured)
        flat = [(name, key, value) for name in names for key, value in self.captured[name].items()]
        numbers = torch.stack([value.float() for _, _, value in flat]).tolist()  # one sync for all layers
        layers: dict[str, dict[str, float]] = {name: {} for name in names}
        for (name, key, _), number in zip(flat, numbers):
            layers[name][key] = number
        self.record(trainer, layers)


@MONITORS.register("gradients")
class GradientMonitor(SampledMonitor):
    """Per conv/linear layer: the L2 norm of the weight gradient (vanishing: tiny in the first layers)."""

    name = "gradients"

    def setup(self, model: nn.Module) -> None:
        self.weights = _weights(model)

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        if not self.due(trainer.state.step):
            return
        present = [(name, w.grad) for name, w in self.weights if w.grad is not None]
        if not present:
            return
        norms = torch.stack([g.detach().float().norm() for _, g in present]).tolist()
        self.record(trainer, {name: {"grad_norm": norm} for (name, _), norm in zip(present, norms)})


@MONITORS.register("updates")
class UpdateMonitor(SampledMonitor):
    """Per conv/linear layer: ||W_t - W_(t-1)|| / ||W_(t-1)||, the update-to-weight ratio (~1e-3 is
    healthy; far lower: LR too low, far higher: LR too high). Weights are copied one iteration early."""

    name = "updates"

    def setup(self, model: nn.Module) -> None:
        self.weights = _weights(model)
        self.before: list[torch.Tensor] | None = None

    def on_train_start(self, trainer: Trainer) -> None:
        super().on_train_start(trainer)
        self._snapshot_if_due(trainer.state.step + 1)

    def _snapshot_if_due(self, next_step: int) -> None:
        self.before = [w.detach().clone() for _, w in self.weights] if self.due(next_step) else None

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        if self.before is not None and self.due(trainer.state.step):
            ratios = torch.stack(
                [
                    (w.detach() - old).float().norm() / old.float().norm().clamp_min(1e-12)
                    for (_, w), old in zip(self.weights, self.before)
                ]
            ).tolist()
            self.record(trainer, {name: {"update_ratio": ratio} for (name, _), ratio in zip(self.weights, ratios)})
        self._snapshot_if_due(trainer.state.step + 1)


def default_monitors(every: int = 50) -> list[SampledMonitor]:
    """One of each registered monitor, sampling every `every` iterations."""
    return [MONITORS.get(name)(every) for name in MONITORS.names()]
