"""Feed random noise into the net: what it predicts, and a class visualization by gradient ascent on
the input from noise (Simonyan, Vedaldi & Zisserman 2014)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..data import Normalizer


@dataclass
class NoiseReport:
    class_fraction: list[float]  # share of noise images predicted as each class
    mean_probability: list[float]  # mean softmax over the noise images
    mean_confidence: float  # mean max probability: near 1/C for an honest net


@torch.no_grad()
def noise_predictions(
    model: nn.Module, normalizer: Normalizer, in_shape: tuple[int, int, int], count: int = 256, seed: int = 0
) -> NoiseReport:
    """Uniform random uint8 images, normalized like the training data."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randint(0, 256, (count, *in_shape), generator=generator, dtype=torch.uint8)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    probabilities = model(normalizer(noise.to(device))).float().softmax(dim=1).cpu()
    model.train(was_training)
    classes = probabilities.shape[1]
    fraction = torch.bincount(probabilities.argmax(dim=1), minlength=classes).double() / count
    return NoiseReport(
        fraction.tolist(), probabilities.mean(dim=0).tolist(), probabilities.max(dim=1).values.mean().item()
    )


def class_visualizations(
    model: nn.Module,
    normalizer: Normalizer,
    in_shape: tuple[int, int, int],
    targets: list[int],
    steps: int = 100,
    lr: float = 0.1,
    l2: float = 0.01,
    seed: int = 0,
) -> tuple[torch.Tensor, list[float]]:
    """For each target class c: argmax_x S_c(x) - l2 * ||x||^2 from small noise, x kept inside the valid pixel range.

    All classes ascend together as one batch (the net is in eval mode, so samples do not interact).
    Returns the images as pixels in [0, 1] (N, C, H, W) and the softmax probability the net gives each."""
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    x = (0.1 * torch.randn(len(targets), *in_shape, generator=generator)).to(device).requires_grad_(True)
    low = normalizer(torch.zeros(1, *in_shape, dtype=torch.uint8, device=device))
    high = normalizer(torch.full((1, *in_shape), 255, dtype=torch.uint8, device=device))
    chosen = torch.tensor(targets, device=device).view(-1, 1)
    optimizer = torch.optim.Adam([x], lr=lr)
    was_training = model.training
    model.eval()
    with torch.enable_grad():
        for _ in range(steps):
            scores = model(x).float().gather(1, chosen)
            objective = scores.sum() - l2 * (x * x).sum()
            (gradient,) = torch.autograd.grad(-objective, x)
            x.grad = gradient
            optimizer.step()
            with torch.no_grad():
                x.copy_(torch.maximum(torch.minimum(x, high), low))
    with torch.no_grad():
        probabilities = model(x).float().softmax(dim=1).gather(1, chosen).flatten().tolist()
    model.train(was_training)
    mean = torch.tensor(normalizer.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(normalizer.std, device=device).view(1, -1, 1, 1)
    return (x.detach() * std + mean).clamp(0, 1).cpu(), probabilities


def class_visualization(
    model: nn.Module,
    normalizer: Normalizer,
    in_shape: tuple[int, int, int],
    target: int,
    steps: int = 100,
    lr: float = 0.1,
    l2: float = 0.01,
    seed: int = 0,
) -> tuple[torch.Tensor, float]:
    """One class: its image as pixels in [0, 1] (C, H, W) and the probability the net gives it."""
    pictures, probabilities = class_visualizations(model, normalizer, in_shape, [target], steps, lr, l2, seed)
    return pictures[0], probabilities[0]
