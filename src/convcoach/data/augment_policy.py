"""RandAugment (Cubuk et al. 2019): each sample gets N ops drawn uniformly from 14, all at one
magnitude M on torchvision's 0-30 scale; 'randaugment:2:9' is the usual policy.

The draws come from the loader's generator; kornia.enhance supplies the deterministic pixel ops
(sharpness, posterize, equalize), whose per-sample factors we draw ourselves."""

from __future__ import annotations

from collections.abc import Callable

import kornia.enhance
import torch

from .augment import AUGMENTS, _arg, _rand, _whole, uniform
from .augment_color import PixelOp, adjust_brightness, adjust_contrast, adjust_saturation
from .augment_geometry import affine_theta, warp

MAX_MAGNITUDE = 30
# op(normalized batch, level in [0, 1], generator, pixel converter) -> normalized batch
PolicyOp = Callable[[torch.Tensor, float, torch.Generator, PixelOp], torch.Tensor]


def _signed(n: int, scale: float, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """+-scale with a random sign per sample (the policy's ops go either way)."""
    return torch.where(_rand(n, x, generator) < 0.5, -scale, scale)


def _linear_warp(x: torch.Tensor, matrices: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
    theta = affine_theta(matrices, x.shape[2], x.shape[3])
    if shift is not None:
        theta[:, :, 2] = shift
    return warp(x, theta)


def _identity(x, level, generator, pix):
    return x


def _shear(axis: int) -> PolicyOp:
    def op(x, level, generator, pix):  # shear factor up to 0.3
        matrices = torch.eye(2, device=x.device).repeat(len(x), 1, 1)
        matrices[:, axis, 1 - axis] = _signed(len(x), 0.3 * level, x, generator)
        return _linear_warp(x, matrices)

    return op


def _translate(axis: int) -> PolicyOp:
    def op(x, level, generator, pix):  # up to 45% of the side (torchvision: 150/331)
        shift = torch.zeros(len(x), 2, device=x.device)
        shift[:, axis] = _signed(len(x), 2 * 0.45 * level, x, generator)  # [-1, 1] units span 2
        return _linear_warp(x, torch.eye(2, device=x.device).repeat(len(x), 1, 1), shift)

    return op


def _rotate(x, level, generator, pix):  # up to 30 degrees
    angle = torch.deg2rad(_signed(len(x), 30 * level, x, generator))
    cos, sin = torch.cos(angle), torch.sin(angle)
    return _linear_warp(x, torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2))


def _pixel(adjust: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> PolicyOp:
    def op(x, level, generator, pix):  # factor 1 +- 0.9 level
        factor = 1 + _signed(len(x), 0.9 * level, x, generator)
        return pix.to_normalized(adjust(pix.to_pixels(x), factor))

    return op


def _sharpness(pixels: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    if min(pixels.shape[-2:]) < 3:  # kornia's 3x3 smoothing kernel needs at least 3x3 images
        return pixels
    return kornia.enhance.sharpness(pixels, factor).clamp(0, 1)


def _posterize(x, level, generator, pix):  # keep 8 - 4 level bits
    bits = torch.full((len(x),), 8 - round(4 * level), device=x.device)
    return pix.to_normalized(kornia.enhance.posterize(pix.to_pixels(x).clamp(0, 1), bits))


def _solarize(x, level, generator, pix):  # invert pixels above 1 - level
    pixels = pix.to_pixels(x)
    return pix.to_normalized(torch.where(pixels >= 1 - level, 1 - pixels, pixels))


def _autocontrast(x, level, generator, pix):  # stretch each channel to [0, 1]
    pixels = pix.to_pixels(x)
    low = pixels.amin(dim=(2, 3), keepdim=True)
    high = pixels.amax(dim=(2, 3), keepdim=True)
    stretched = (pixels - low) / (high - low).clamp_min(1e-3)
    return pix.to_normalized(torch.where(high - low > 1e-3, stretched, pixels))


def _equalize(x, level, generator, pix):
    return pix.to_normalized(kornia.enhance.equalize(pix.to_pixels(x).clamp(0, 1)))


POLICY: dict[str, PolicyOp] = {
    "identity": _identity,
    "shear_x": _shear(0),
    "shear_y": _shear(1),
    "translate_x": _translate(0),
    "translate_y": _translate(1),
    "rotate": _rotate,
    "brightness": _pixel(adjust_brightness),
    "color": _pixel(adjust_saturation),
    "contrast": _pixel(adjust_contrast),
    "sharpness": _pixel(_sharpness),
    "posterize": _posterize,
    "solarize": _solarize,
    "autocontrast": _autocontrast,
    "equalize": _equalize,
}


class RandAugment(PixelOp):
    """N rounds; in each, every sample draws one op of POLICY and the batch is split by op."""

    def __init__(self, spec: str, rounds: int, magnitude: float) -> None:
        super().__init__(spec)
        self.rounds, self.level = rounds, magnitude / MAX_MAGNITUDE
        self.ops = list(POLICY.values())

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        self.to_pixels(x[:0])  # fail early when not fitted
        for _ in range(self.rounds):
            choice = (uniform(len(x), 0, len(self.ops), x, generator)).long().clamp_max(len(self.ops) - 1)
            out = x.clone()
            for index, op in enumerate(self.ops):
                chosen = (choice == index).nonzero().squeeze(1)
                if len(chosen):
                    out[chosen] = op(x[chosen], self.level, generator, self)
            x = out
        return x


@AUGMENTS.register("randaugment", "rand_augment")
def randaugment(spec: str, args: list[str]) -> RandAugment:
    """randaugment:N:M, N ops per sample (default 2, at most 14) at magnitude M in [0, 30] (default 9)."""
    rounds = _whole(spec, args, 0, 2, 1, len(POLICY), "op count")
    return RandAugment(spec, rounds, _arg(spec, args, 1, 9, 0, MAX_MAGNITUDE))
