"""Per-channel mean subtraction (VGG) or mean/std standardization (ResNet), fit on the training split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError


@dataclass
class Normalizer:
    """x_norm = (x / 255 - mean) / std per channel; mean and std are in [0, 1] pixel units."""

    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, images: torch.Tensor, mode: str = "meanstd") -> Normalizer:
        """Statistics of uint8 (N, C, H, W) training images, accumulated in float64 chunks."""
        channels = images.shape[1]
        total = torch.zeros(channels, dtype=torch.float64)
        total_sq = torch.zeros(channels, dtype=torch.float64)
        rows = max(1, 2**24 // max(1, images[0].numel()))  # chunks of ~128 MB in float64, whatever the image size
        for start in range(0, len(images), rows):
            chunk = images[start : start + rows].to(torch.float64) / 255.0
            total += chunk.sum(dim=(0, 2, 3))
            total_sq += (chunk * chunk).sum(dim=(0, 2, 3))
        count = images.shape[0] * images.shape[2] * images.shape[3]
        mean = total / count
        std = (total_sq / count - mean * mean).clamp_min(1e-12).sqrt()
        if mode == "meanstd":
            return cls(mean.tolist(), std.clamp_min(1e-3).tolist())
        if mode == "mean":
            return cls(mean.tolist(), [1.0] * channels)
        if mode == "none":
            return cls([0.0] * channels, [1.0] * channels)
        raise ConfigError(f"preprocess must be meanstd, mean or none; got '{mode}'")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) -> normalized float32, as one fused multiply-add."""
        scale, shift = self._affine(images.device)
        return torch.addcmul(shift, images.to(torch.float32), scale)

    def _affine(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        cache = getattr(self, "_cache", None)
        if cache is None or cache[0] != device:
            std = torch.tensor(self.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
            mean = torch.tensor(self.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
            cache = (device, 1.0 / (255.0 * std), -mean / std)
            self._cache = cache
        return cache[1], cache[2]

    def state_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_state(cls, state: dict) -> Normalizer:
        return cls(list(state["mean"]), list(state["std"]))


def resize_uint8(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 images (N, C, H, W) resized bilinearly to size x size, still uint8; in chunks of ~64 MB of
    float32, so the peak memory is the output's, not four times the larger of input and output."""
    out = np.empty((len(images), images.shape[1], size, size), dtype=np.uint8)
    rows = max(1, 2**24 // max(1, images.shape[1] * max(size * size, images.shape[2] * images.shape[3])))
    for start in range(0, len(images), rows):
        tensor = torch.nn.functional.interpolate(
            torch.from_numpy(images[start : start + rows]).float(),
            size=(size, size),
            mode="bilinear",
            align_corners=False,
        )
        out[start : start + rows] = tensor.round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out
