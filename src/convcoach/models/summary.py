"""A model's layers before it is trained: each layer's output shape, parameters and FLOPs per image, from one
forward pass of one image (torch's FlopCounterMode) on a model built on the meta device (shapes only, no
memory), as footprint.py counts; `train --dry-run` prints it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str  # the module's class
    output: tuple[int, ...]  # per image
    parameters: int
    flops: int  # forward, per image; a multiply-add counts 2


@dataclass(frozen=True)
class LayerTable:
    layers: list[Layer]  # the leaf modules that hold parameters or change the shape (no activations, dropout)
    parameters: int  # the whole model's
    flops: int  # the whole model's, forward, per image

    def lines(self) -> list[str]:
        """The table as aligned text lines: name, type, output shape, parameters, FLOPs."""
        width = max([len("layer"), *(len(layer.name) for layer in self.layers)])
        kind = max([len("type"), *(len(layer.kind) for layer in self.layers)])
        rows = [f"{'layer':<{width}}  {'type':<{kind}}  {'output':>12}  {'parameters':>11}  {'FLOPs':>8}"]
        for layer in self.layers:
            shape = "x".join(map(str, layer.output))
            rows.append(
                f"{layer.name:<{width}}  {layer.kind:<{kind}}  {shape:>12}  {layer.parameters:>11,}  "
                f"{si(layer.flops):>8}"
            )
        return rows


def si(value: float) -> str:
    """1234567 -> '1.23M': a count at a glance."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.0f}"


def layer_table(model: nn.Module, in_shape: tuple[int, int, int]) -> LayerTable:
    """One image through `model` (best built under `torch.device("meta")`), counting FLOPs per module."""
    device = next((p.device for p in model.parameters()), torch.device("meta"))
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def record(name: str, inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and inputs and isinstance(inputs[0], torch.Tensor):
            shapes[name] = (tuple(inputs[0].shape[1:]), tuple(output.shape[1:]))

    leaves = [(name, m) for name, m in model.named_modules() if name and not list(m.children())]
    hooks = [m.register_forward_hook(lambda _, i, o, n=name: record(n, i, o)) for name, m in leaves]
    was_training = model.training
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model.eval()(torch.zeros(1, *in_shape, device=device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    counts = counter.get_flop_counts()
    root = type(model).__name__
    layers = []
    for name, module in leaves:
        parameters = sum(p.numel() for p in module.parameters())
        if name not in shapes or (not parameters and shapes[name][0] == shapes[name][1]):
            continue  # an activation, dropout or identity: its output is its input's shape
        flops = sum(counts.get(f"{root}.{name}", {}).values())
        layers.append(Layer(name, type(module).__name__, shapes[name][1], parameters, int(flops)))
    return LayerTable(layers, sum(p.numel() for p in model.parameters()), int(counter.get_total_flops()))
