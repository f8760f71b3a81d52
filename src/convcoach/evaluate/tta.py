"""Test-time augmentation: average the softmax over several views of each test image.

flip (the image and its mirror), 10crop[:PAD] (the lectures' 4 corners + centre, each with its flip,
cut at the model's input size from the image zero-padded by PAD pixels, default 2),
multiscale[:S1:S2...] (zoomed about the centre by each factor, default 0.9:1:1.1, each with its
flip) and random[:N] (N draws of the run's own training augmentation, default 8)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import TrainConfig
from ..data.augment import Augmenter, parse_augment
from ..data.augment_geometry import warp
from ..errors import ConfigError
from ..registry import Registry, parse_spec, spec_check, spec_float
from .trained import TrainedModel, load_split

Views = Callable[[torch.Tensor], list[torch.Tensor]]
# name -> builder(spec, args) -> (trained model -> views); building checks the arguments
TTA: Registry = Registry("test-time augmentation")


def _count(spec: str, args: list[str], index: int, default: int, low: int, high: int) -> int:
    value = spec_float(spec, args[index], "test-time augmentation") if len(args) > index else default
    if value != int(value) or not low <= value <= high:
        raise ConfigError(f"test-time augmentation '{spec}': {value:g} must be a whole number in [{low}, {high}]")
    return int(value)


def _with_flips(views: list[torch.Tensor]) -> list[torch.Tensor]:
    return views + [view.flip(3) for view in views]


@TTA.register("flip")
def flip(spec: str, args: list[str]) -> Callable[[TrainedModel], Views]:
    """The image and its left-right mirror."""
    return lambda trained: lambda x: [x, x.flip(3)]


@TTA.register("10crop", "tencrop")
def ten_crop(spec: str, args: list[str]) -> Callable[[TrainedModel], Views]:
    """4 corner crops and the centre crop of the padded image, and their mirrors (Krizhevsky et al. 2012)."""
    pad = _count(spec, args, 0, 2, 1, 64)

    def views(x: torch.Tensor) -> list[torch.Tensor]:
        height, width = x.shape[2:]
        padded = F.pad(x, (pad, pad, pad, pad))  # 0 is the mean colour, as in training's translate
        corners = [(0, 0), (0, 2 * pad), (2 * pad, 0), (2 * pad, 2 * pad), (pad, pad)]
        return _with_flips([padded[:, :, top : top + height, left : left + width] for top, left in corners])

    return lambda trained: views


@TTA.register("multiscale")
def multiscale(spec: str, args: list[str]) -> Callable[[TrainedModel], Views]:
    """The image zoomed about its centre by each scale (> 1 zooms in), each with its mirror."""
    scales = [spec_float(spec, a, "test-time augmentation") for a in args] or [0.9, 1.0, 1.1]
    if any(not 0.25 <= s <= 4 for s in scales):
        raise ConfigError(f"test-time augmentation '{spec}': scales must be in [0.25, 4]")

    def views(x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for scale in scales:
            theta = torch.tensor([[1 / scale, 0, 0], [0, 1 / scale, 0]], device=x.device).expand(len(x), 2, 3)
            out.append(x if scale == 1 else warp(x, theta))
        return _with_flips(out)

    return lambda trained: views


@TTA.register("random")
def random_views(spec: str, args: list[str]) -> Callable[[TrainedModel], Views]:
    """N random draws of the checkpoint's training augmentation (the lectures' "e.g. n=8"), seeded by its seed."""
    count = _count(spec, args, 0, 8, 1, 256)

    def build(trained: TrainedModel) -> Views:
        augmenter = training_augmenter(trained)
        generator = torch.Generator(device=next(trained.model.parameters()).device).manual_seed(trained.config.seed + 2)
        return lambda x: [augmenter(x, generator) for _ in range(count)]

    return build


def training_augmenter(trained: TrainedModel) -> Augmenter:
    """The run's training augmentation, fitted on its training split when an op needs statistics."""
    augmenter = parse_augment(trained.config.augment_pipeline())
    if not augmenter.ops:
        raise ConfigError(
            f"{trained.path} was trained without augmentation: 'random' test-time augmentation has nothing to draw"
        )
    if augmenter.needs_fit:
        augmenter.fit(load_split(trained, split="train").images, trained.normalizer)
    return augmenter


def parse_tta(spec: str) -> Callable[[TrainedModel], Views]:
    """Check a spec such as '10crop' or 'random:8'; returns what builds its views for a model."""
    name, args = parse_spec(spec)
    views = TTA.get(name)(spec, args)
    args.check_all_read(spec, "test-time augmentation")
    return views


class TTAModel(nn.Module):
    """Wraps a classifier: forward returns log of the mean softmax over the views, so softmax of the
    output is the averaged probability and evaluate() needs no change."""

    def __init__(self, model: nn.Module, views: Views) -> None:
        super().__init__()
        self.model, self.views = model, views
        self.train(model.training)  # a new Module is in training mode: evaluate() would restore that onto `model`

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = torch.stack([self.model(view).float().softmax(dim=1) for view in self.views(x)]).mean(dim=0)
        return probabilities.clamp_min(1e-12).log()


def tta_model(trained: TrainedModel, spec: str) -> TTAModel:
    """The trained model wrapped with the views of `spec`."""
    return TTAModel(trained.model, parse_tta(spec)(trained))


@spec_check("tta")
def _check_tta(value: str | None, config: TrainConfig) -> None:
    if config.resolved_tta():
        parse_tta(config.resolved_tta())


def accuracy_with_tta(summary: dict[str, Any]) -> str:
    """A run's test accuracy as '93.44% with flip TTA (92.99% without)' when its final test used TTA
    (`eval` without --tta reports the second figure), else '93.44%'."""
    if summary.get("tta") and summary.get("test_accuracy_without_tta") is not None:
        return (
            f"{summary['test_accuracy'] * 100:.2f}% with {summary['tta']} TTA "
            f"({summary['test_accuracy_without_tta'] * 100:.2f}% without)"
        )
    return f"{summary['test_accuracy'] * 100:.2f}%"
