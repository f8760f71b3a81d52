"""The lectures' linear classifier and fully connected net."""

from __future__ import annotations

import torch.nn as nn

from .layers import activation, norm


def linear(in_shape: tuple[int, int, int], num_classes: int, **_: object) -> nn.Module:
    """Softmax/SVM linear classifier: scores = W x + b on the flattened image."""
    channels, height, width = in_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, num_classes))


def mlp(
    in_shape: tuple[int, int, int],
    num_classes: int,
    depth: int = 1,
    width: int = 100,
    activation_name: str = "relu",
    norm_spec: str = "none",
    dropout: float = 0.0,
    bias: bool = True,
    **_: object,
) -> nn.Module:
    """`depth` hidden layers of `width` units (FC - Norm - Act - Dropout), then the FC classifier.

    depth=1 is the lectures' two-layer net; depth=6, width=4096, tanh is their init experiment."""
    channels, height, width_px = in_shape
    layers: list[nn.Module] = [nn.Flatten()]
    features = channels * height * width_px
    for _ in range(depth):
        layers += [
            nn.Linear(features, width, bias=bias),
            norm(norm_spec, width, spatial=False),
            activation(activation_name),
        ]
        if dropout:
            layers.append(nn.Dropout(dropout))
        features = width
    layers.append(nn.Linear(features, num_classes, bias=bias))
    return nn.Sequential(*[layer for layer in layers if not isinstance(layer, nn.Identity)])
