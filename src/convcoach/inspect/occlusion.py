"""Occlusion sensitivity (Zeiler & Fergus 2014): slide a grey patch over the image and map how much
the correct class's probability drops when each region is hidden."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class OcclusionResult:
    drop: torch.Tensor  # (H, W): mean drop in p(target) over the patches covering each pixel
    base_probability: float  # p(target) of the unoccluded image
    patch: int
    stride: int


def default_patch(height: int, width: int) -> tuple[int, int]:
    """A quarter of the shorter side, moved by half a patch."""
    patch = max(2, min(height, width) // 4)
    return patch, max(1, patch // 2)


def _starts(size: int, patch: int, stride: int) -> list[int]:
    if patch >= size:
        return [0]
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)  # the last patch touches the border: every pixel is covered
    return starts


@torch.no_grad()
def occlusion_maps(
    model: nn.Module,
    images: torch.Tensor,
    targets: list[int],
    patch: int | None = None,
    stride: int | None = None,
    fill: float = 0.0,
    batch_size: int = 256,
) -> list[OcclusionResult]:
    """Normalized (N, C, H, W) inputs; `fill` 0 is the training set's mean colour after normalization.

    Every occluded copy of every image (and the images themselves) goes through the net in a few large
    batches: on a CPU, many small forward passes cost far more than the same images in one."""
    if (patch is not None and patch < 1) or (stride is not None and stride < 1):
        raise ValueError("patch and stride must be >= 1")
    count, channels, height, width = images.shape
    default_size, default_stride = default_patch(height, width)
    patch = patch or default_size
    stride = stride or (default_stride if patch == default_size else max(1, patch // 2))
    positions = [(top, left) for top in _starts(height, patch, stride) for left in _starts(width, patch, stride)]
    # job k: image k // (P + 1), position k % (P + 1) - 1 (-1: the unoccluded image)
    jobs = [(image, position) for image in range(count) for position in range(-1, len(positions))]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    images = images.to(device)
    probabilities = []
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        batch = images[[image for image, _ in chunk]].clone()
        for index, (_, position) in enumerate(chunk):
            if position >= 0:
                top, left = positions[position]
                batch[index, :, top : top + patch, left : left + patch] = fill
        chosen = torch.tensor([targets[image] for image, _ in chunk], device=device)
        probabilities.append(model(batch).float().softmax(dim=1).gather(1, chosen.view(-1, 1)).flatten().cpu())
    model.train(was_training)
    table = torch.cat(probabilities).view(count, len(positions) + 1)
    results = []
    for row in table:
        base = row[0].item()
        total = torch.zeros(height, width)
        covered = torch.zeros(height, width)
        for value, (top, left) in zip((base - row[1:]).tolist(), positions):
            total[top : top + patch, left : left + patch] += value
            covered[top : top + patch, left : left + patch] += 1
        results.append(OcclusionResult(total / covered.clamp_min(1), base, patch, stride))
    return results


def occlusion_map(
    model: nn.Module,
    image: torch.Tensor,
    target: int,
    patch: int | None = None,
    stride: int | None = None,
    fill: float = 0.0,
    batch_size: int = 256,
) -> OcclusionResult:
    """One normalized (C, H, W) image: the mean drop in p(target) over the patches covering each pixel."""
    return occlusion_maps(model, image[None], [target], patch, stride, fill, batch_size)[0]
