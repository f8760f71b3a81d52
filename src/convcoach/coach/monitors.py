"""Monitors during training: every N iterations, per layer, the activation statistics (dead ReLUs,
std, saturation) and histogram, gradient norms and update-to-weight ratios, as "monitor" rows in
metrics.jsonl and a summary in summary.json. Cheap: between samples a monitor costs one modulo per
iteration. The costlier instruments (step size, gradient noise) live in instruments.py."""

from __future__ import annotations

import contextlib
import math
import statistics
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from ..registry import Registry
from ..train.callbacks import Callback, MetricsLogger, Priority
from ..train.clipping import GradientClipping
from .stats import moments, unit_stats, watched_layers

if TYPE_CHECKING:
    from ..train.loop import Trainer

MONITORS: Registry[type[SampledMonitor]] = Registry("monitor")
HIST_BINS = 32  # activation histogram: bins even in asinh(value) (linear near 0, logarithmic beyond 1) ...
HIST_LIMIT = 20.0  # ... over [-HIST_LIMIT, HIST_LIMIT]; values beyond fall in the end bins
HIST_VALUES = 1 << 13  # outputs of the batch's first examples a histogram counts (a fraction of the batch)


class _ExtraPass:
    """Set while an instrument runs an extra forward pass: activation monitors do not record it."""

    active = False


@contextlib.contextmanager
def extra_pass() -> Iterator[None]:
    """A block of forward passes that are not the training step's (instruments.py)."""
    before, _ExtraPass.active = _ExtraPass.active, True
    try:
        yield
    finally:
        _ExtraPass.active = before


def activation_histogram(output: torch.Tensor) -> torch.Tensor:
    """Fractions of a layer's outputs in HIST_BINS bins even in asinh(value) over +-HIST_LIMIT, counted
    on the batch's first examples (whole examples: a strided pick would alias with the feature maps)."""
    per_example = max(output[0].numel(), 1) if output.dim() > 1 else 1
    values = output.detach()[: -(-HIST_VALUES // per_example)].float()
    limit = math.asinh(HIST_LIMIT)
    magnitude = values.abs()  # asinh(x) = sign(x) log(|x| + sqrt(x^2 + 1)): torch.asinh is ~10x slower on CPU
    scaled = magnitude.mul(magnitude).add_(1).sqrt_().add_(magnitude).log_().copysign_(values)
    counts = torch.histc(scaled.clamp_(-limit, limit), bins=HIST_BINS, min=-limit, max=limit)
    return counts / max(values.numel(), 1)


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
        self.last_row: dict[str, Any] | None = None  # the latest row with its extras, for the log sinks (logs/)
        self.logger: MetricsLogger | None = None

    def due(self, step: int) -> bool:
        return step == 1 or step % self.every == 0

    def on_train_start(self, trainer: Trainer) -> None:
        from ..train.distributed import unwrap

        self.logger = next((c for c in trainer.callbacks if isinstance(c, MetricsLogger)), None)
        self.setup(unwrap(trainer.model))

    def setup(self, model: nn.Module) -> None: ...

    def record(
        self, trainer: Trainer, layers: dict[str, dict[str, float]], extra: dict[str, Any] | None = None
    ) -> None:
        """One row; `extra` keys go to metrics.jsonl only, not to the samples a checkpoint keeps."""
        row = {
            "kind": "monitor",
            "monitor": self.name,
            "step": trainer.state.step,
            "epoch": trainer.state.epoch,
            "layers": {name: {k: _round(v) for k, v in values.items()} for name, values in layers.items()},
        }
        self.samples.append(row)
        self.last_row = {**row, **extra} if extra else row
        if self.logger is not None:
            self.logger.log(self.last_row)

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
    saturated tanh/sigmoid outputs; plus the input batch's mean and std (is it normalized?). Each row
    also carries, under "hist", each layer's histogram of outputs (HIST_BINS fractions, asinh scale):
    the report draws them over time (fastai's "colorful dimension")."""

    name = "activations"

    def setup(self, model: nn.Module) -> None:
        self.layers = watched_layers(model)
        self.handles: list[Any] = []
        self.captured: dict[str, dict[str, torch.Tensor]] = {}
        self.histograms: dict[str, torch.Tensor] = {}

    def capture(self, name: str, module: nn.Module, output: torch.Tensor) -> None:
        if _ExtraPass.active or name in self.captured:  # an instrument's extra forward, or --sam's second pass
            return
        self.captured[name] = unit_stats(module, output)
        self.histograms[name] = activation_histogram(output)

    def on_batch_start(self, trainer: Trainer, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.due(trainer.state.step + 1):
            if not self.handles:  # once per step: with --accumulate its micro-batches all start here
                self.handles = [
                    m.register_forward_hook(lambda mod, inp, out, n=name: self.capture(n, mod, out))
                    for name, m in self.layers
                ]
            self.captured, self.histograms = {"input": moments(x.detach().float())}, {}  # the step's last micro-batch
        return x, y

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        if not self.handles:
            return
        for handle in self.handles:
            handle.remove()
        self.handles = []
        names = list(self.captured)
        flat = [(name, key, value) for name in names for key, value in self.captured[name].items()]
        hists = list(self.histograms)
        numbers = torch.cat(  # one sync for all layers
            [torch.stack([value.float() for _, _, value in flat]), *(self.histograms[n] for n in hists)]
        ).tolist()
        layers: dict[str, dict[str, float]] = {name: {} for name in names}
        for (name, key, _), number in zip(flat, numbers):
            layers[name][key] = number
        counts = numbers[len(flat) :]
        hist = {n: [_round(c) for c in counts[i * HIST_BINS : (i + 1) * HIST_BINS]] for i, n in enumerate(hists)}
        self.histograms = {}
        self.record(
            trainer, layers, {"hist": {"bins": HIST_BINS, "limit": HIST_LIMIT, "layers": hist}} if hist else None
        )


@MONITORS.register("gradients")
class GradientMonitor(SampledMonitor):
    """Per conv/linear layer: the L2 norm of the weight gradient (vanishing: tiny in the first layers), as the
    optimizer stepped with it. With --clip-grad the row also carries the step's global norm before clipping."""

    name = "gradients"

    def on_train_start(self, trainer: Trainer) -> None:
        super().on_train_start(trainer)
        self.clipping = next((c for c in trainer.callbacks if isinstance(c, GradientClipping)), None)

    def setup(self, model: nn.Module) -> None:
        self.weights = _weights(model)

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        if not self.due(trainer.state.step):
            return
        present = [(name, w.grad) for name, w in self.weights if w.grad is not None]
        if not present:
            return
        pre_clip = self.clipping.last_norm if self.clipping is not None else None
        extra = [pre_clip.float()] if pre_clip is not None else []
        norms = torch.stack([*(g.detach().float().norm() for _, g in present), *extra]).tolist()  # one sync
        clip = {"clip_grad": {"norm": norms.pop(), "max_norm": self.clipping.max_norm}} if extra else None
        self.record(trainer, {name: {"grad_norm": norm} for (name, _), norm in zip(present, norms)}, clip)


@MONITORS.register("updates")
class UpdateMonitor(SampledMonitor):
    """Per conv/linear layer: ||W_t - W_(t-1)|| / ||W_(t-1)||, the update-to-weight ratio (~1e-3 is
    healthy; far lower: LR too low, far higher: LR too high), and how alike its units are (0: all the
    same, a symmetric init). Weights are copied one iteration early."""

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
            spreads = torch.stack([_spread(w) for _, w in self.weights]).tolist()
            self.record(
                trainer,
                {
                    name: {"update_ratio": ratio, "alike": spread}
                    for (name, _), ratio, spread in zip(self.weights, ratios, spreads)
                },
            )
        self._snapshot_if_due(trainer.state.step + 1)


def _spread(weight: torch.Tensor) -> torch.Tensor:
    """How far a layer's units (weight rows) differ from their mean row, relative to the weights' norm: 0
    when every unit is the same (a constant or zero init), which gradient descent never breaks."""
    rows = weight.detach().float().flatten(1)
    if len(rows) < 2:
        return rows.new_ones(())
    return (rows - rows.mean(dim=0)).norm() / rows.norm().clamp_min(1e-12)


def default_monitors(every: int = 50) -> list[SampledMonitor]:
    """One of each registered monitor, sampling every `every` iterations."""
    return [MONITORS.get(name)(every) for name in MONITORS.names()]


from . import instruments  # noqa: E402, F401  (registers the step-size and gradient-noise monitors)
