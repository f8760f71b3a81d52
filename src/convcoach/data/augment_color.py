"""Colour augmentations in pixel units: brightness, contrast, saturation, hue, colour jitter and
AlexNet's fancy-PCA lighting. They need the normalizer (and fancy PCA the training images), given
once by `Augmenter.fit`; saturation and hue leave grayscale images unchanged."""

from __future__ import annotations

import math

import kornia.enhance
import torch

from .augment import AUGMENTS, _arg, normal, uniform
from .preprocess import Normalizer

# ITU-R 601-2 luma, the grayscale PIL and torchvision use
LUMA = (0.299, 0.587, 0.114)


class PixelOp:
    """Base of ops that work on pixels in [0, 1]: x -> x * std + mean -> apply -> back to normalized units."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None

    @property
    def fitted(self) -> bool:
        return self.mean is not None

    def fit(self, images: torch.Tensor, normalizer: Normalizer) -> None:
        self.mean = torch.tensor(normalizer.mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(normalizer.std, dtype=torch.float32).view(1, -1, 1, 1)

    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            raise RuntimeError(
                f"augmentation '{self.spec}' works in pixel units: call Augmenter.fit(train_images, normalizer) first"
            )
        if self.mean.device != x.device:  # moved once to the training device, not copied per batch
            self.mean, self.std = self.mean.to(x.device), self.std.to(x.device)
        return x * self.std + self.mean

    def to_normalized(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self.mean) / self.std

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.to_normalized(self.apply(self.to_pixels(x), generator))

    def apply(self, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError


def gray(pixels: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) luminance; a one-channel image is its own."""
    if pixels.shape[1] != 3:
        return pixels.mean(dim=1, keepdim=True)
    weights = torch.tensor(LUMA, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
    return (pixels * weights).sum(dim=1, keepdim=True)


def _per_sample(factor: torch.Tensor) -> torch.Tensor:
    return factor.view(-1, 1, 1, 1)


def adjust_brightness(pixels: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with black: p * f."""
    return (pixels * _per_sample(factor)).clamp(0, 1)


def adjust_contrast(pixels: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the image's mean gray: m + f (p - m)."""
    mean = gray(pixels).mean(dim=(1, 2, 3), keepdim=True)
    return (mean + _per_sample(factor) * (pixels - mean)).clamp(0, 1)


def adjust_saturation(pixels: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the image's grayscale version: g + f (p - g); grayscale images are unchanged."""
    if pixels.shape[1] != 3:
        return pixels
    luminance = gray(pixels)
    return (luminance + _per_sample(factor) * (pixels - luminance)).clamp(0, 1)


def adjust_hue(pixels: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by `shift` turns (kornia's HSV conversion); grayscale images are unchanged."""
    if pixels.shape[1] != 3:
        return pixels
    return kornia.enhance.adjust_hue(pixels, shift * (2 * math.pi)).clamp(0, 1)


class ColorJitter(PixelOp):
    """Brightness, contrast and saturation factors from U(1 - s, 1 + s) and a hue shift from U(-h, h) turns."""

    def __init__(
        self, spec: str, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0, hue: float = 0.0
    ) -> None:
        super().__init__(spec)
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue

    def apply(self, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = len(pixels)
        if self.brightness:
            pixels = adjust_brightness(pixels, uniform(n, 1 - self.brightness, 1 + self.brightness, pixels, generator))
        if self.contrast:
            pixels = adjust_contrast(pixels, uniform(n, 1 - self.contrast, 1 + self.contrast, pixels, generator))
        if self.saturation and pixels.shape[1] == 3:
            pixels = adjust_saturation(pixels, uniform(n, 1 - self.saturation, 1 + self.saturation, pixels, generator))
        if self.hue and pixels.shape[1] == 3:
            pixels = adjust_hue(pixels, uniform(n, -self.hue, self.hue, pixels, generator))
        return pixels


@AUGMENTS.register("jitter", "color_jitter")
def jitter(spec: str, args: list[str]) -> ColorJitter:
    """jitter:S[:H], colour jitter: brightness, contrast and saturation S (default 0.4), hue H turns (default 0)."""
    strength = _arg(spec, args, 0, 0.4, 0, 1)
    return ColorJitter(spec, strength, strength, strength, _arg(spec, args, 1, 0.0, 0, 0.5))


@AUGMENTS.register("brightness")
def brightness(spec: str, args: list[str]) -> ColorJitter:
    """Brightness factor from U(1 - s, 1 + s) (default 0.4)."""
    return ColorJitter(spec, brightness=_arg(spec, args, 0, 0.4, 0, 1))


@AUGMENTS.register("contrast")
def contrast(spec: str, args: list[str]) -> ColorJitter:
    """Contrast factor from U(1 - s, 1 + s) (default 0.4)."""
    return ColorJitter(spec, contrast=_arg(spec, args, 0, 0.4, 0, 1))


@AUGMENTS.register("saturation")
def saturation(spec: str, args: list[str]) -> ColorJitter:
    """Saturation factor from U(1 - s, 1 + s) (default 0.4); no-op on grayscale."""
    return ColorJitter(spec, saturation=_arg(spec, args, 0, 0.4, 0, 1))


@AUGMENTS.register("hue")
def hue(spec: str, args: list[str]) -> ColorJitter:
    """Hue shift from U(-h, h) turns (default 0.05); no-op on grayscale."""
    return ColorJitter(spec, hue=_arg(spec, args, 0, 0.05, 0, 0.5))


class FancyPCA(PixelOp):
    """AlexNet's lighting noise (Krizhevsky et al. 2012): eigen-decompose the training set's
    per-pixel colour covariance, then add to every pixel of an image the offset
    [p1 ... pC] [a1 s1 ... aC sC]^T with a_i ~ N(0, std) drawn per image.

    AlexNet writes the eigenvalue lambda_i where we use s_i = sqrt(lambda_i), the spread along p_i:
    that keeps the offset in pixel units whatever the pixel scale ([0, 255] or [0, 1])."""

    def __init__(self, spec: str, std: float) -> None:
        super().__init__(spec)
        self.std_alpha = std
        self.eigenvectors: torch.Tensor | None = None  # (C, C), column i is p_i
        self.spreads: torch.Tensor | None = None  # (C,), s_i

    @property
    def fitted(self) -> bool:
        return self.eigenvectors is not None

    def fit(self, images: torch.Tensor, normalizer: Normalizer) -> None:
        super().fit(images, normalizer)
        self.eigenvectors, eigenvalues = colour_pca(images)
        self.spreads = eigenvalues.clamp_min(0).sqrt()

    def apply(self, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.eigenvectors is None:
            raise RuntimeError(
                f"augmentation '{self.spec}' needs the training set's colour statistics: "
                "call Augmenter.fit(train_images, normalizer) first"
            )
        alpha = normal((len(pixels), pixels.shape[1]), pixels, generator) * self.std_alpha
        offset = (alpha * self.spreads.to(pixels.device)) @ self.eigenvectors.to(pixels.device).T  # (N, C)
        return (pixels + offset[:, :, None, None]).clamp(0, 1)


def colour_pca(images: torch.Tensor, max_images: int = 20000) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvectors (columns) and eigenvalues, largest first, of the covariance of the pixel colours
    (in [0, 1]) of uint8 (N, C, H, W) images; at most `max_images` evenly spaced ones, in float64 chunks."""
    if len(images) > max_images:
        images = images[torch.linspace(0, len(images) - 1, max_images).long()]
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    outer = torch.zeros(channels, channels, dtype=torch.float64)
    count = 0
    for start in range(0, len(images), 2048):
        chunk = images[start : start + 2048].cpu().to(torch.float64).div_(255.0)
        pixels = chunk.transpose(0, 1).reshape(channels, -1)
        total += pixels.sum(dim=1)
        outer += pixels @ pixels.T
        count += pixels.shape[1]
    mean = total / count
    covariance = outer / count - torch.outer(mean, mean)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    return eigenvectors.flip(1).float(), eigenvalues.flip(0).float()


@AUGMENTS.register("pca", "fancy_pca", "lighting")
def fancy_pca(spec: str, args: list[str]) -> FancyPCA:
    """pca:STD, fancy-PCA lighting with a_i ~ N(0, STD) (default 0.1, AlexNet's)."""
    return FancyPCA(spec, _arg(spec, args, 0, 0.1, 0, 2))
