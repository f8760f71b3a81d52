"""Dead ReLUs per layer: units (channels) whose output is zero for every image of a data sample."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn


@dataclass
class LayerDeadness:
    layer: str
    units: int
    dead_units: int
    dead_fraction: float  # units never active on the sample
    zero_fraction: float  # activations that are exactly zero, over all units and positions

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def dead_relu_report(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> list[LayerDeadness]:
    """One row per nn.ReLU module, in definition order; empty when the net has no ReLU."""
    layers = [(name, module) for name, module in model.named_modules() if isinstance(module, (nn.ReLU, nn.ReLU6))]
    active: dict[str, torch.Tensor] = {}
    zeros: dict[str, list[int]] = {name: [0, 0] for name, _ in layers}

    def make_hook(name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            positive = output.detach() > 0
            seen = positive.transpose(0, 1).flatten(1).any(dim=1)  # per unit (dim 1): ever > 0 in this batch
            active[name] = seen.cpu() if name not in active else active[name] | seen.cpu()
            zeros[name][0] += int((~positive).sum())
            zeros[name][1] += positive.numel()

        return hook

    handles = [module.register_forward_hook(make_hook(name)) for name, module in layers]
    was_training = model.training
    model.eval()
    try:
        for x, _ in batches:
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    report = []
    for name, _ in layers:
        if name not in active:
            continue  # a ReLU module that the forward pass never called
        units = active[name].numel()
        dead = int((~active[name]).sum())
        zero, total = zeros[name]
        report.append(LayerDeadness(name, units, dead, dead / max(units, 1), zero / max(total, 1)))
    return report
