"""Pick a unit and find the dataset images it likes most: the top-N inputs by the unit's peak activation."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn as nn

from ..errors import ConfigError


@torch.no_grad()
def unit_activations(
    model: nn.Module, layer: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> torch.Tensor:
    """(N, units) activation of every unit of `layer` per image: the spatial maximum for a conv feature map."""
    rows: list[torch.Tensor] = []

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        values = output.detach().float()
        rows.append((values.flatten(2).amax(dim=2) if values.dim() > 2 else values).cpu())

    handle = layer.register_forward_hook(hook)
    was_training = model.training
    model.eval()
    try:
        for x, _ in batches:
            model(x)
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(rows)


def top_activating(activations: torch.Tensor, units: list[int], top: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """For each unit, the `top` highest activations and the indices of their images, each (U, top)."""
    available = activations.shape[1]
    bad = [u for u in units if not 0 <= u < available]
    if bad:
        raise ConfigError(f"unit {bad[0]} does not exist: this layer has units 0..{available - 1}")
    chosen = activations[:, units].T
    best = chosen.topk(min(top, activations.shape[0]), dim=1)
    return best.values, best.indices
