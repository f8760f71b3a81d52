"""Geometric augmentations as one batched warp each: random resized crop, scale, rotation, shear,
stretch, a combined affine, and elastic deformation.

Our own ops with affine_grid/grid_sample rather than kornia.augmentation, because kornia draws its
parameters from torch's global RNG: these take the loader's torch.Generator, so a run is
reproducible from its seed and resumes bit-exactly. Areas a warp uncovers repeat the nearest edge
pixel (grid_sample's 'border'): no foreign colour appears, e.g. black stays black on Fashion-MNIST."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .augment import AUGMENTS, AugmentOp, _arg, _rand, _whole, normal, uniform


def warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Sample x at per-sample affine positions: theta (N, 2, 3) maps output to input coordinates in [-1, 1]."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def affine_theta(forward: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """affine_grid's theta for per-sample forward maps (N, 2, 2) in pixel units about the centre.

    theta samples the input, so it is the inverse map; [-1, 1] coordinates stretch a non-square
    image, hence D^-1 A D with D = diag(W/2, H/2)."""
    inverse = torch.linalg.inv(forward)
    scale = torch.tensor([width / 2, height / 2], dtype=forward.dtype, device=forward.device)
    linear = inverse * scale[None, None, :] / scale[None, :, None]
    return torch.cat([linear, torch.zeros_like(linear[:, :, :1])], dim=2)


def random_affine(
    x: torch.Tensor,
    generator: torch.Generator,
    degrees: float = 0.0,
    shear: float = 0.0,
    stretch: float = 0.0,
    scale: float = 0.0,
) -> torch.Tensor:
    """One warp of rotation (+-degrees), x-shear (+-shear degrees), per-axis stretch (1 +- stretch)
    and isotropic scale (1 +- scale), each drawn per sample: forward map R @ Sh @ diag(sx, sy) * z."""
    n, _, height, width = x.shape
    angle = uniform(n, -degrees, degrees, x, generator) * (math.pi / 180)
    shear_tan = torch.tan(uniform(n, -shear, shear, x, generator) * (math.pi / 180))
    sx, sy = uniform(n, 1 - stretch, 1 + stretch, x, generator), uniform(n, 1 - stretch, 1 + stretch, x, generator)
    zoom = uniform(n, 1 - scale, 1 + scale, x, generator)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shearing = torch.stack(
        [
            torch.stack([torch.ones_like(shear_tan), shear_tan], -1),
            torch.stack([torch.zeros_like(shear_tan), torch.ones_like(shear_tan)], -1),
        ],
        -2,
    )
    stretching = torch.diag_embed(torch.stack([sx, sy], -1)) * zoom[:, None, None]
    return warp(x, affine_theta(rotation @ shearing @ stretching, height, width))


def _affine_op(**ranges: float) -> AugmentOp:
    if not any(ranges.values()):
        return lambda x, generator: x

    def op(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return random_affine(x, generator, **ranges)

    return op


@AUGMENTS.register("rotate", "rotation")
def rotate(spec: str, args: list[str]) -> AugmentOp:
    """Rotate by an angle drawn from U(-deg, deg) per sample (default 10)."""
    return _affine_op(degrees=_arg(spec, args, 0, 10, 0, 180))


@AUGMENTS.register("shear")
def shear(spec: str, args: list[str]) -> AugmentOp:
    """Shear horizontally by an angle from U(-deg, deg) (default 10)."""
    return _affine_op(shear=_arg(spec, args, 0, 10, 0, 60))


@AUGMENTS.register("stretch")
def stretch(spec: str, args: list[str]) -> AugmentOp:
    """Scale width and height independently by factors from U(1 - s, 1 + s) (default 0.1)."""
    return _affine_op(stretch=_arg(spec, args, 0, 0.1, 0, 0.9))


@AUGMENTS.register("scale", "zoom")
def scale(spec: str, args: list[str]) -> AugmentOp:
    """Zoom in or out by a factor from U(1 - s, 1 + s) (default 0.1)."""
    return _affine_op(scale=_arg(spec, args, 0, 0.1, 0, 0.9))


@AUGMENTS.register("affine")
def affine(spec: str, args: list[str]) -> AugmentOp:
    """affine:DEG:SHEAR:STRETCH, rotation, shear and stretch in one warp (defaults 10:10:0.1)."""
    return _affine_op(
        degrees=_arg(spec, args, 0, 10, 0, 180),
        shear=_arg(spec, args, 1, 10, 0, 60),
        stretch=_arg(spec, args, 2, 0.1, 0, 0.9),
    )


@AUGMENTS.register("resized_crop", "rrc")
def resized_crop(spec: str, args: list[str]) -> AugmentOp:
    """Random resized crop (Szegedy et al. 2015): a box of area U(a, 1) x image and aspect ratio
    log-U(3/4, 4/3), resized back to the input size; `a` defaults to 0.35 for small images."""
    min_area = _arg(spec, args, 0, 0.35, 0.05, 1.0)
    log_ratio = math.log(4 / 3)

    def op(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = len(x)
        area = uniform(n, min_area, 1.0, x, generator)
        ratio = torch.exp(uniform(n, -log_ratio, log_ratio, x, generator))
        width = (area * ratio).sqrt().clamp_max(1.0)  # fractions of the image's width and height
        height = (area / ratio).sqrt().clamp_max(1.0)
        centre_x = (2 * _rand(n, x, generator) - 1) * (1 - width)  # the box stays inside the image
        centre_y = (2 * _rand(n, x, generator) - 1) * (1 - height)
        zero = torch.zeros_like(width)
        theta = torch.stack([torch.stack([width, zero, centre_x], -1), torch.stack([zero, height, centre_y], -1)], -2)
        return warp(x, theta)

    return op


@AUGMENTS.register("elastic")
def elastic(spec: str, args: list[str]) -> AugmentOp:
    """elastic:ALPHA[:GRID], elastic deformation as in Ronneberger et al. 2015: offsets ~ N(0, ALPHA
    pixels) on a coarse GRID x GRID grid (default 2 px on 3 x 3), bicubically interpolated to every pixel."""
    alpha = _arg(spec, args, 0, 2.0, 0, 16)
    points = _whole(spec, args, 1, 3, 2, 32, "grid size")

    def op(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if alpha == 0:
            return x
        n, _, height, width = x.shape
        offsets = normal((n, 2, points, points), x, generator) * alpha
        field = F.interpolate(offsets, size=(height, width), mode="bicubic", align_corners=True)
        # pixels -> [-1, 1] grid units: x offsets by 2/W, y offsets by 2/H
        field = field * torch.tensor([2 / width, 2 / height], device=x.device).view(1, 2, 1, 1)
        identity = torch.eye(2, 3, device=x.device).expand(n, 2, 3)
        grid = F.affine_grid(identity, list(x.shape), align_corners=False) + field.permute(0, 2, 3, 1)
        return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=False)

    return op
