"""Instruments sampled during training (issue 23): the step size along the update (Cockpit's alpha: does a
step overshoot?) and the gradient-noise scale (McCandlish et al. 2018: is the batch size useful?). Each
costs one extra pass on the step's own batch, so they sample every STRIDE-th monitor sample; the extra
pass reads gradients with torch.autograd.grad (never .grad) and restores buffers and the RNG, so a run
with them trains bit for bit like one without."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn as nn

from ..precision import autocast
from .monitors import MONITORS, SampledMonitor, extra_pass

if TYPE_CHECKING:
    from ..train.loop import Trainer

STRIDE = 8  # an extra pass costs 0.5-1 training step: sample every 8th time the cheap monitors do
NOISE_SMOOTHING = 0.5  # EMA weight of the noise-scale numerator and denominator: half from earlier samples


def rng_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Torch's CPU generator state, and the device's when it is CUDA."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def set_rng_state(state: tuple[torch.Tensor, torch.Tensor | None], device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


@contextlib.contextmanager
def invisible(
    model: nn.Module, device: torch.device, rng: tuple[torch.Tensor, torch.Tensor | None] | None = None
) -> Iterator[None]:
    """A block whose forward passes leave no trace: buffers (BatchNorm's running statistics) and the RNG
    come back as they were, activation monitors ignore it; `rng` replays a saved state inside (dropout
    draws the masks the step drew)."""
    buffers = [(b, b.clone()) for b in model.buffers()]
    saved = rng_state(device)
    if rng is not None:
        set_rng_state(rng, device)
    try:
        with extra_pass():
            yield
    finally:
        with torch.no_grad():
            for buffer, old in buffers:
                buffer.copy_(old)
        set_rng_state(saved, device)


def loss_and_grads(
    trainer: Trainer, model: nn.Module, params: Sequence[torch.Tensor], x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The training loss (penalty included) on (x, y) and its gradient for `params`, as the loop computes
    them (autocast, fp16 loss scaling), without touching .grad."""
    with autocast(trainer.precision, trainer.device):
        loss = trainer.loss_fn(model(x), y)
    if trainer.penalty is not None:
        loss = loss + trainer.penalty(trainer.penalty_params)
    scale = trainer.scaler.get_scale() if trainer.scaler is not None else 1.0
    grads = torch.autograd.grad(loss * scale, list(params), allow_unused=True)
    return loss.detach().float(), [
        torch.zeros_like(p) if g is None else (g.float() / scale if scale != 1.0 else g.float())
        for p, g in zip(params, grads)
    ]


def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.stack([(u.float() * v.float()).sum() for u, v in zip(a, b)]).sum()


def _stepped(model: nn.Module) -> list[torch.Tensor]:
    """The parameters this step's gradient reaches (a frozen layer's stale .grad is not one)."""
    return [p for p in model.parameters() if p.requires_grad and p.grad is not None]


def _model(trainer: Trainer) -> nn.Module:
    from ..train.distributed import unwrap

    return unwrap(trainer.model)


def fit_alpha(loss_before: float, loss_after: float, slope_before: float, slope_after: float) -> dict[str, float]:
    """Fits f(s) = a + b s + c s^2 / 2 along the step (s = 0 before it, 1 after it) to the two losses and
    the two directional derivatives g.d by least squares, as Cockpit does (with unit weights: in step
    units the four are of one scale). alpha = 1/s* - 1 = -c/b - 1 where s* = -b/c is the minimum:
    -1 the step barely moved, 0 it landed on the minimum, 1 on the same height beyond it, > 1 uphill.
    Without a minimum ahead there is no alpha: `concave` (c <= 0) or `uphill` (b >= 0) is 1."""
    design = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.5], [0.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    observed = np.array([loss_before, loss_after, slope_before, slope_after], dtype=np.float64)
    result = {"loss_before": loss_before, "loss_after": loss_after}
    if not np.isfinite(observed).all():
        return result
    _, b, c = np.linalg.lstsq(design, observed, rcond=None)[0]
    if c <= 0:
        result["concave"] = 1.0
    elif b >= 0:
        result["uphill"] = 1.0
    else:
        result["alpha"] = float(-c / b - 1.0)
    return result


def noise_estimates(small_sq: float, big_sq: float, small: int, big: int) -> tuple[float, float]:
    """McCandlish et al. 2018, appendix A.1: unbiased estimates of |G|^2 and tr(Sigma) from the squared
    norms of gradients measured on batches of `small` and `big` examples (E|G_B|^2 = |G|^2 + tr(Sigma)/B)."""
    grad_sq = (big * big_sq - small * small_sq) / (big - small)
    trace = (small_sq - big_sq) / (1.0 / small - 1.0 / big)
    return grad_sq, trace


class _Instrument(SampledMonitor):
    """A monitor that samples every STRIDE-th time the cheap ones do (at iteration 1 too) and keeps the
    step's batch, as the network sees it (after resizing and mixing), while it is due."""

    def __init__(self, every: int = 50) -> None:
        super().__init__(every * STRIDE)
        self.batch: tuple[torch.Tensor, torch.Tensor] | None = None

    def on_batch_start(self, trainer: Trainer, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.batch = (x, y) if self.due(trainer.state.step + 1) and self.active(trainer) else None
        return x, y

    def active(self, trainer: Trainer) -> bool:
        return True


@MONITORS.register("step_size")
class StepSizeMonitor(_Instrument):
    """alpha along the update d = theta_(t+1) - theta_t, on the step's own batch: the loss and g.d before
    the step come from the step itself, after it from one extra forward/backward (with the step's dropout
    masks). One process and no --accumulate only: there the step's loss and gradient are those of a larger
    batch than the one it could measure again."""

    name = "step_size"

    def __init__(self, every: int = 50) -> None:
        super().__init__(every)
        self.rng: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self.params: list[torch.Tensor] = []
        self.start: list[torch.Tensor] | None = None  # theta_t
        self.gradient: list[torch.Tensor] = []  # the step's own gradient at theta_t

    def active(self, trainer: Trainer) -> bool:
        return not trainer.dist.enabled and trainer.accumulation.every == 1

    def on_batch_start(self, trainer: Trainer, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = super().on_batch_start(trainer, x, y)
        self.rng = rng_state(trainer.device) if self.batch is not None else None  # what the forward will draw from
        self.start = None
        return x, y

    def on_before_optimizer_step(self, trainer: Trainer) -> None:
        if self.batch is None:
            return
        self.params = _stepped(_model(trainer))
        self.start = [p.detach().clone() for p in self.params]
        self.gradient = [p.grad.detach().clone() for p in self.params]  # type: ignore[union-attr]

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        if self.batch is None or self.start is None:
            return
        (x, y), start, gradient, rng = self.batch, self.start, self.gradient, self.rng
        self.batch = self.start = None
        step = [p.detach() - old for p, old in zip(self.params, start)]
        model = _model(trainer)
        with invisible(model, trainer.device, rng):
            after, grads = loss_and_grads(trainer, model, self.params, x, y)
        after_value, before_slope, after_slope = torch.stack(
            [after, _dot(gradient, step), _dot(grads, step)]
        ).tolist()  # one sync
        self.params, self.gradient = [], []
        if before_slope == 0.0 and after_slope == 0.0:  # no step (a skipped fp16 step, lr 0)
            return
        self.record(trainer, {"model": fit_alpha(loss, after_value, before_slope, after_slope)})


@MONITORS.register("noise")
class NoiseMonitor(_Instrument):
    """The gradient-noise scale B_simple = tr(Sigma) / |G|^2 from the step's gradient (the whole batch, all
    processes' and micro-batches') and one extra backward on the first half of this process's (last micro-)
    batch. Each sample's estimates
    are unbiased but noisy; `noise_scale` is the ratio of their moving averages, as the paper advises."""

    name = "noise"

    def __init__(self, every: int = 50) -> None:
        super().__init__(every)
        self.averages = [0.0, 0.0]  # EMA of |G|^2 and of tr(Sigma)
        self.pending: tuple[torch.Tensor, torch.Tensor, int, int] | None = None

    def on_before_optimizer_step(self, trainer: Trainer) -> None:
        if self.batch is None:
            return
        (x, y), self.batch = self.batch, None
        half = len(x) // 2
        if half < 2:  # BatchNorm needs two examples
            return
        model = _model(trainer)
        params = _stepped(model)
        big_sq = torch.stack([p.grad.float().square().sum() for p in params]).sum()  # type: ignore[union-attr]
        with invisible(model, trainer.device):
            _, grads = loss_and_grads(trainer, model, params, x[:half], y[:half])
        small_sq = torch.stack([g.square().sum() for g in grads]).sum()
        group = trainer.accumulation.at(trainer.train_loader.position).group_size  # --accumulate's micro-batches
        self.pending = (small_sq, big_sq, half, len(x) * trainer.dist.world_size * group)

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        if self.pending is None:
            return
        (small_sq, big_sq, small, big), self.pending = self.pending, None
        small_value, big_value = torch.stack([small_sq, big_sq]).tolist()
        if not (math.isfinite(small_value) and math.isfinite(big_value)):
            return
        grad_sq, trace = noise_estimates(small_value, big_value, small, big)
        weight = NOISE_SMOOTHING if self.samples else 0.0
        self.averages = [weight * old + (1 - weight) * new for old, new in zip(self.averages, (grad_sq, trace))]
        values = {"batch": float(big), "grad_sq": grad_sq, "trace": trace}
        if self.averages[0] > 0 and self.averages[1] > 0:
            values["noise_scale"] = self.averages[1] / self.averages[0]
        self.record(trainer, {"model": values})

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "averages": list(self.averages)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.averages = list(state.get("averages", [0.0, 0.0]))
