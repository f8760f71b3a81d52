"""Occlusion and noise augmentations: additive Gaussian noise, cutout and random erasing, each a
per-sample mask or draw over the whole batch (no per-sample Python)."""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from .augment import AUGMENTS, AugmentOp, _arg, _rand, _whole, normal, uniform


def box_mask(
    x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: torch.Tensor, width: torch.Tensor
) -> torch.Tensor:
    """(N, 1, H, W) bool mask of one box per sample; rows [top, top + height), columns [left, left + width)."""
    rows = torch.arange(x.shape[2], device=x.device).view(1, 1, -1, 1)
    cols = torch.arange(x.shape[3], device=x.device).view(1, 1, 1, -1)
    top, left, height, width = (t.view(-1, 1, 1, 1) for t in (top, left, height, width))
    return (rows >= top) & (rows < top + height) & (cols >= left) & (cols < left + width)


@AUGMENTS.register("noise", "gaussian_noise")
def gaussian_noise(spec: str, args: list[str]) -> AugmentOp:
    """Additive Gaussian noise N(0, sigma^2) in normalized units (default 0.1); not clipped, as in
    training with input noise (Bishop 1995)."""
    sigma = _arg(spec, args, 0, 0.1, 0, 10)

    def op(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x + sigma * normal(tuple(x.shape), x, generator) if sigma else x

    return op


@AUGMENTS.register("cutout")
def cutout(spec: str, args: list[str]) -> AugmentOp:
    """Cutout (DeVries & Taylor 2017): a SIZE x SIZE square (default 8) centred on a uniformly drawn
    pixel, clipped at the border, set to 0 (the mean colour)."""
    size = _whole(spec, args, 0, 8, 0, 1024, "size")

    def op(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if size == 0:
            return x
        n, _, height, width = x.shape
        centre_y = (_rand(n, x, generator) * height).long()
        centre_x = (_rand(n, x, generator) * width).long()
        side = torch.full_like(centre_y, size)
        return x.masked_fill(box_mask(x, centre_y - size // 2, centre_x - size // 2, side, side), 0.0)

    def check_size(height: int, width: int) -> None:
        if size > min(height, width):
            raise ConfigError(
                f"augmentation '{spec}': a {size}x{size} cutout is larger than the {height}x{width} images "
                f"and would blank them; use at most {min(height, width)} (the paper used about half the side)"
            )

    op.check_size = check_size
    return op


@AUGMENTS.register("erase", "random_erasing")
def random_erasing(spec: str, args: list[str]) -> AugmentOp:
    """erase:P[:MAX_AREA], random erasing (Zhong et al. 2017): with probability P (default 0.5) a box of
    area U(0.02, MAX_AREA) x image (default 0.4) and aspect ratio log-U(0.3, 1/0.3), inside the image,
    filled with N(0, 1) noise in normalized units."""
    p = _arg(spec, args, 0, 0.5, 0, 1)
    max_area = _arg(spec, args, 1, 0.4, 0.02, 1)
    log_ratio = math.log(1 / 0.3)

    def op(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if p == 0:
            return x
        n, _, height, width = x.shape
        area = uniform(n, 0.02, max_area, x, generator) * height * width
        ratio = torch.exp(uniform(n, -log_ratio, log_ratio, x, generator))
        box_h = (area * ratio).sqrt().round().clamp(1, height).long()
        box_w = (area / ratio).sqrt().round().clamp(1, width).long()
        top = (_rand(n, x, generator) * (height - box_h + 1)).long()
        left = (_rand(n, x, generator) * (width - box_w + 1)).long()
        chosen = (_rand(n, x, generator) < p).view(-1, 1, 1, 1)
        mask = box_mask(x, top, left, box_h, box_w) & chosen
        return torch.where(mask, normal(tuple(x.shape), x, generator), x)

    return op
