"""Gradient saliency (Simonyan, Vedaldi & Zisserman 2014): |d score_c / d x|, max over colour channels."""

from __future__ import annotations

import torch
import torch.nn as nn


def saliency_maps(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Normalized (N, C, H, W) images and (N,) classes -> (N, H, W) saliency; the model's weights get no gradient."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = images.to(device).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        scores = model(x).float()  # the unnormalized class score, as in the paper (not the softmax)
        picked = scores.gather(1, targets.to(device).view(-1, 1)).sum()
        (gradient,) = torch.autograd.grad(picked, x)
    model.train(was_training)
    return gradient.abs().amax(dim=1).cpu()
