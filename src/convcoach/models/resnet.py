"""Basic-block ResNet (He et al. 2016) sized for 28-32 px inputs: depth = 6n + 2."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from .conv import Conv2d
from .layers import activation, norm

DOWNSAMPLES = ("stride", "pool", "conv_pool")


class BasicBlock(nn.Module):
    """out = act(F(x) + shortcut(x)), F = Conv-Norm-Act-Conv-Norm; `drop_prob` is stochastic depth.

    A block that halves the map does it by `downsample`: stride (the first conv strided, He et al.),
    pool (2x2 max-pool of the input, then both paths at half size) or conv_pool (the first conv at full
    size, max-pooled before its norm as in the pool_early stem; the shortcut takes the pooled input)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        act: str,
        norm_spec: str,
        shortcut: str,
        downsample: str = "stride",
    ) -> None:
        super().__init__()
        has_bias = norm_spec == "none"
        mode = downsample if stride != 1 else "stride"  # how this block halves the map, if it does
        # None where unused, so the traced graph (BN folding) sees conv -> norm directly
        self.pool_input = nn.MaxPool2d(2, ceil_mode=True) if mode == "pool" else None
        self.pool_skip = nn.MaxPool2d(2, ceil_mode=True) if mode == "conv_pool" else None
        conv_stride = stride if mode == "stride" else 1
        self.conv1 = Conv2d(in_channels, out_channels, 3, conv_stride, 1, bias=has_bias)
        self.pool1 = nn.MaxPool2d(2, ceil_mode=True) if mode == "conv_pool" else None
        self.norm1 = norm(norm_spec, out_channels)
        self.act1 = activation(act)
        self.conv2 = Conv2d(out_channels, out_channels, 3, 1, 1, bias=has_bias)
        self.norm2 = norm(norm_spec, out_channels)
        self.norm2.is_residual_last = True  # zero-init target (Goyal et al. 2017)
        self.act2 = activation(act)
        self.drop_prob = 0.0
        self.shortcut: nn.Module = nn.Identity()
        self.stride, self.pad_channels = 1, 0
        if stride != 1 or in_channels != out_channels:
            if shortcut == "projection":  # option B: 1x1 conv + norm
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, conv_stride, bias=has_bias), norm(norm_spec, out_channels)
                )
            else:  # option A: strided subsampling and zero-padded new channels, no parameters
                self.stride = conv_stride
                self.pad_channels = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_input is not None:
            x = self.pool_input(x)
        skip = self.shortcut(x if self.pool_skip is None else self.pool_skip(x))
        if self.stride > 1 and isinstance(self.shortcut, nn.Identity):
            skip = skip[:, :, :: self.stride, :: self.stride]  # same size as the padded strided conv
        if self.pad_channels:
            skip = F.pad(skip, (0, 0, 0, 0, 0, self.pad_channels))
        out = self.conv1(x)
        if self.pool1 is not None:
            out = self.pool1(out)
        out = self.norm2(self.conv2(self.act1(self.norm1(out))))
        if self.training and self.drop_prob > 0:
            # stochastic depth (Huang et al. 2016): drop the whole branch per sample, rescale survivors
            keep = torch.rand(out.shape[0], 1, 1, 1, device=out.device) >= self.drop_prob
            out = out * keep / (1 - self.drop_prob)
        return self.act2(out + skip)


STEMS = ("pool_early", "pool", "stride", "unshuffle", "none")


def _stem(kind: str, in_channels: int, width: int, has_bias: bool, norm_spec: str, act: str) -> nn.Sequential:
    """The first conv. Every kind but `none` halves 28-32 px maps: 4x fewer FLOPs in stage 1.

    pool_early: conv-maxpool-norm-act (norm and act run on the pooled map: ~1.4x faster steps at width 24);
    pool: conv-norm-act-maxpool; stride: a stride-2 3x3 conv; unshuffle: space-to-depth (each 2x2 pixel
    block becomes 4 channels, lossless) then a 3x3 conv at half resolution, so no full-size map or max-pool
    backward (a 6x6-pixel, stride-2 receptive field); none: conv-norm-act at full resolution."""
    stride = 2 if kind == "stride" else 1
    layers: list[nn.Module] = []
    if kind == "unshuffle":
        layers.append(nn.PixelUnshuffle(2))
        in_channels *= 4
    layers.append(nn.Conv2d(in_channels, width, 3, stride, 1, bias=has_bias))
    if kind == "pool_early":
        layers.append(nn.MaxPool2d(2))
    layers += [norm(norm_spec, width), activation(act)]
    if kind == "pool":
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class ResNet(nn.Module):
    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        # 2 blocks per stage: at width 16 as fast as ResNet-8 width 24 and +0.0-0.2% (benchmarks/README)
        depth: int = 14,
        width: int = 16,  # 16-32-64 channels (2,630 img/s training on 2 CPU cores)
        activation_name: str = "relu",
        norm_spec: str = "batch",
        dropout: float = 0.0,
        shortcut: str = "projection",
        stem: str = "pool_early",
        stochastic_depth: float = 0.0,
        downsample: str = "stride",
        **_: object,
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ConfigError(f"resnet depth must be 6n+2 (8, 14, 20, 32, 44, 56, ...), got {depth}")
        if stem not in STEMS:
            raise ConfigError(f"resnet stem must be one of {', '.join(STEMS)}, got '{stem}'")
        if downsample not in DOWNSAMPLES:
            raise ConfigError(f"resnet downsample must be one of {', '.join(DOWNSAMPLES)}, got '{downsample}'")
        if shortcut not in ("projection", "identity"):
            raise ConfigError(f"resnet shortcut must be projection or identity, got '{shortcut}'")
        blocks_per_stage = (depth - 2) // 6
        has_bias = norm_spec == "none"
        self.stem = _stem(stem, in_shape[0], width, has_bias, norm_spec, activation_name)
        blocks, channels = [], width
        for stage in range(3):
            out = width * 2**stage
            for index in range(blocks_per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(BasicBlock(channels, out, stride, activation_name, norm_spec, shortcut, downsample))
                channels = out
        self.blocks = nn.Sequential(*blocks)
        # linear decay over depth: block l of L drops with probability p * l / L
        for index, block in enumerate(blocks, start=1):
            block.drop_prob = stochastic_depth * index / len(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.blocks(self.stem(x))).flatten(1)
        return self.fc(self.dropout(x))


def resnet(in_shape: tuple[int, int, int], num_classes: int, **options: object) -> nn.Module:
    return ResNet(in_shape, num_classes, **options)
