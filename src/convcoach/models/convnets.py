"""Plain conv nets: the lectures' [(Conv-Norm-Act)*N - POOL]*M - (FC-Norm-Act)*K - FC pattern, and VGG."""

from __future__ import annotations

import torch.nn as nn

from .layers import activation, conv_block, norm


def _head(
    features: int, num_classes: int, fc_layers: int, fc_width: int, act: str, norm_spec: str, dropout: float
) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    for _ in range(fc_layers):
        layers += [nn.Linear(features, fc_width), norm(norm_spec, fc_width, spatial=False), activation(act)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        features = fc_width
    if dropout and not fc_layers:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(features, num_classes))
    return [layer for layer in layers if not isinstance(layer, nn.Identity)]


def cnn(
    in_shape: tuple[int, int, int],
    num_classes: int,
    depth: int = 3,
    width: int = 32,
    activation_name: str = "relu",
    norm_spec: str = "batch",
    dropout: float = 0.0,
    convs_per_stage: int = 2,
    fc_layers: int = 1,
    fc_width: int = 128,
    pool: str = "max",
    **_: object,
) -> nn.Module:
    """`depth` stages of `convs_per_stage` conv blocks, each stage doubling `width` and ending in a 2x2 pool."""
    from .pooling import pool_layer

    layers: list[nn.Module] = []
    channels = in_shape[0]
    for stage in range(depth):
        out = width * 2**stage
        for _ in range(convs_per_stage):
            layers += conv_block(channels, out, activation_name, norm_spec)
            channels = out
        layers.append(pool_layer(pool))
    layers += _head(channels, num_classes, fc_layers, fc_width, activation_name, norm_spec, dropout)
    return nn.Sequential(*layers)


VGG_PLANS = {11: [1, 1, 2, 2, 2], 13: [2, 2, 2, 2, 2], 16: [2, 2, 3, 3, 3], 8: [1, 1, 2], 6: [1, 1, 1]}


def vgg(
    in_shape: tuple[int, int, int],
    num_classes: int,
    depth: int = 8,
    width: int = 32,
    activation_name: str = "relu",
    norm_spec: str = "batch",
    dropout: float = 0.0,
    pool: str = "max",
    **_: object,
) -> nn.Module:
    """Small VGG (Simonyan & Zisserman 2014): 3x3 convs, 2x2 pools, widths doubling to 8x, two FC layers."""
    from ..errors import ConfigError
    from .pooling import pool_layer

    if depth not in VGG_PLANS:
        raise ConfigError(f"vgg depth must be one of {sorted(VGG_PLANS)}, got {depth}")
    layers: list[nn.Module] = []
    channels = in_shape[0]
    size = min(in_shape[1:])
    for stage, convs in enumerate(VGG_PLANS[depth]):
        out = width * 2 ** min(stage, 3)
        for _ in range(convs):
            layers += conv_block(channels, out, activation_name, norm_spec)
            channels = out
        if size >= 2:  # stop pooling once the map is 1 pixel wide
            layers.append(pool_layer(pool))
            size //= 2
    layers += _head(channels, num_classes, 1, 4 * width, activation_name, norm_spec, dropout)
    return nn.Sequential(*layers)
