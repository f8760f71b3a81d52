"""Find layers by name in any model: the first weighted layer, activations, the last conv feature map."""

from __future__ import annotations

import torch.nn as nn

from ..errors import ConfigError
from ..registry import suggest

ACTIVATION_TYPES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.ELU, nn.SiLU)


def leaf_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Name -> module for every module without children (the names `--layer` accepts)."""
    return {name: module for name, module in model.named_modules() if name and not any(True for _ in module.children())}


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    layers = leaf_layers(model)
    if name not in layers:
        known = list(layers)
        raise ConfigError(f"unknown layer '{name}'{suggest(name, known)}; layers: {', '.join(known)}")
    return layers[name]


def first_weighted_layer(model: nn.Module) -> tuple[str, nn.Module]:
    """The first Conv2d or Linear layer in definition order."""
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            return name, module
    raise ConfigError("the model has no Conv2d or Linear layer to inspect")


def default_feature_layer(model: nn.Module) -> str:
    """The activation after the last Conv2d (the deepest spatial features), else the last activation."""
    names = list(leaf_layers(model).items())
    last_conv = max((i for i, (_, m) in enumerate(names) if isinstance(m, nn.Conv2d)), default=None)
    start = last_conv + 1 if last_conv is not None else 0
    after = [name for name, m in names[start:] if isinstance(m, ACTIVATION_TYPES)]
    if after:
        return after[0]
    activations = [name for name, m in names if isinstance(m, ACTIVATION_TYPES)]
    if not activations:
        raise ConfigError("the model has no activation layer; pass --layer NAME")
    return activations[-1]
