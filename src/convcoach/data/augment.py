"""Batched training augmentations: each op maps a normalized (N, C, H, W) batch to a new one,
drawing a fresh random choice per sample from the given generator (airbench style)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import TrainConfig
from ..errors import ConfigError
from ..registry import Registry, parse_spec, spec_check, spec_float
from .preprocess import Normalizer

AugmentOp = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

# name -> factory(args from the spec) -> op
AUGMENTS: Registry = Registry("augmentation")


def _rand(n: int, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device).to(x.device)


def uniform(n: int, low: float, high: float, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """n per-sample draws from U(low, high) on x's device."""
    return low + (high - low) * _rand(n, x, generator)


def normal(shape: tuple[int, ...], x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Standard normal draws of `shape` on x's device."""
    return torch.randn(shape, generator=generator, device=generator.device).to(x.device)


def _arg(spec: str, args: list[str], index: int, default: float, low: float, high: float) -> float:
    value = spec_float(spec, args[index], "augmentation") if len(args) > index else default
    if not low <= value <= high:
        raise ConfigError(f"augmentation '{spec}': magnitude {value} is outside [{low}, {high}]")
    return value


def _whole(spec: str, args: list[str], index: int, default: int, low: int, high: int, what: str) -> int:
    """A whole-number argument (pixels, counts): '2.7' is an error, not silently 2."""
    value = _arg(spec, args, index, default, low, high)
    if value != int(value):
        raise ConfigError(f"augmentation '{spec}': the {what} {value:g} must be a whole number")
    return int(value)


@AUGMENTS.register("hflip")
def hflip(spec: str, args: list[str]) -> AugmentOp:
    """Mirror left-right with probability p (default 0.5)."""
    p = _arg(spec, args, 0, 0.5, 0.0, 1.0)

    def op(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        flip = (_rand(len(x), x, generator) < p).view(-1, 1, 1, 1)
        return torch.where(flip, x.flip(3), x)

    return op


@AUGMENTS.register("vflip")
def vflip(spec: str, args: list[str]) -> AugmentOp:
    """Mirror top-bottom with probability p (default 0.5)."""
    p = _arg(spec, args, 0, 0.5, 0.0, 1.0)

    def op(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        flip = (_rand(len(x), x, generator) < p).view(-1, 1, 1, 1)
        return torch.where(flip, x.flip(2), x)

    return op


@AUGMENTS.register("translate", "crop")
def translate(spec: str, args: list[str]) -> AugmentOp:
    """Random crop after zero padding by `pad` pixels: a per-sample shift of up to +-pad."""
    pad = _whole(spec, args, 0, 4, 0, 64, "padding")

    def op(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if pad == 0:
            return x
        n, c, h, w = x.shape
        padded = F.pad(x, (pad, pad, pad, pad))
        shifts = (_rand(2 * n, x, generator) * (2 * pad + 1)).long().clamp_max(2 * pad).view(2, n)
        rows = (shifts[0, :, None] + torch.arange(h, device=x.device)).view(n, 1, h, 1)
        cols = (shifts[1, :, None] + torch.arange(w, device=x.device)).view(n, 1, 1, w)
        # gather rows then columns: two cheap index ops instead of a per-sample loop
        padded = padded.gather(2, rows.expand(n, c, h, w + 2 * pad))
        return padded.gather(3, cols.expand(n, c, h, w))

    return op


@dataclass
class Augmenter:
    """A sequence of ops applied to each training batch."""

    ops: list[AugmentOp]
    specs: list[str]

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for op in self.ops:
            x = op(x, generator)
        return x

    @property
    def needs_fit(self) -> bool:
        """True while an op still waits for `fit` (colour ops, fancy PCA)."""
        return any(hasattr(op, "fit") and not op.fitted for op in self.ops)

    def check_size(self, height: int, width: int) -> None:
        """Refuse ops whose size does not fit the images (`cutout:1000` on 8x8 would blank every one):
        each op with a `check_size(height, width)` raises a ConfigError saying what would fit."""
        for op in self.ops:
            if hasattr(op, "check_size"):
                op.check_size(height, width)

    def fit(self, images: torch.Tensor, normalizer: Normalizer) -> Augmenter:
        """Give the ops that need them the training images (uint8 N, C, H, W) and the normalizer:
        fancy PCA's colour covariance, the pixel units of the colour ops. Call once before training."""
        for op in self.ops:
            if hasattr(op, "fit"):
                op.fit(images, normalizer)
        return self


def parse_augment(specs: list[str] | str | None) -> Augmenter:
    """Build an Augmenter from ['hflip', 'translate:2'] or 'hflip,translate:2'; 'none' or [] is off."""
    if isinstance(specs, str):
        specs = [s for s in specs.split(",") if s.strip()]
    specs = [s for s in (specs or []) if s.strip().lower() != "none"]
    ops = []
    for spec in specs:
        name, args = parse_spec(spec)
        ops.append(AUGMENTS.get(name)(spec, args))
        args.check_all_read(spec, "augmentation")
    return Augmenter(ops, list(specs))


def import_augment_modules(package: str, path: Iterable[str], prefix: str = "augment_") -> list[str]:
    """Import every `prefix*` module found on a package's path (each registers its ops in AUGMENTS on
    import), in name order; returns their names."""
    names = sorted(info.name for info in pkgutil.iter_modules(list(path)) if info.name.startswith(prefix))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names


# the gallery: every augment_*.py module next to this one registers its ops on import: dropping one in is enough
GALLERY = import_augment_modules(__package__, sys.modules[__package__].__path__)


@spec_check("augment")
def _check_augment(value: list[str], config: TrainConfig) -> None:
    parse_augment(config.augment_pipeline())  # with cutout and input noise, which join the pipeline
