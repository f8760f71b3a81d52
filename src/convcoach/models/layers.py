"""Building blocks shared by every architecture: activation and normalization registries."""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch.nn as nn

from ..errors import ConfigError
from ..registry import Registry, parse_spec, spec_check

ACTIVATIONS: Registry[Callable[[], nn.Module]] = Registry("activation")
ACTIVATIONS.register("relu")(lambda: nn.ReLU(inplace=True))
ACTIVATIONS.register("leaky_relu")(lambda: nn.LeakyReLU(0.01, inplace=True))
ACTIVATIONS.register("tanh")(nn.Tanh)
ACTIVATIONS.register("sigmoid")(nn.Sigmoid)
ACTIVATIONS.register("gelu")(nn.GELU)
ACTIVATIONS.register("elu")(lambda: nn.ELU(inplace=True))
ACTIVATIONS.register("silu")(lambda: nn.SiLU(inplace=True))

# the gain torch.nn.init.calculate_gain uses for each activation (He et al. 2015)
ACTIVATION_GAIN_NAME = {
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "gelu": "relu",
    "elu": "relu",
    "silu": "relu",
}

log = logging.getLogger("convcoach")


def activation(name: str) -> nn.Module:
    return ACTIVATIONS.get(name)()


def check_activation(name: str) -> None:
    ACTIVATIONS.get(name)


# norm name -> factory(channels, args, spatial) ; spatial=False for features after flatten
NORMS: Registry = Registry("normalization")


@NORMS.register("batch")
def _batch(channels: int, args: list[str], spatial: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if spatial else nn.BatchNorm1d(channels)


@NORMS.register("layer")
def _layer(channels: int, args: list[str], spatial: bool) -> nn.Module:
    # over (C, H, W) for conv features, as in Ba et al. 2016; GroupNorm with one group does exactly that
    return nn.GroupNorm(1, channels) if spatial else nn.LayerNorm(channels)


@NORMS.register("instance")
def _instance(channels: int, args: list[str], spatial: bool) -> nn.Module:
    # one group per channel = instance norm with a learnable affine (Ulyanov et al. 2016)
    return nn.GroupNorm(channels, channels) if spatial else nn.LayerNorm(channels)


@NORMS.register("group")
def _group(channels: int, args: list[str], spatial: bool) -> nn.Module:
    wanted = int(args[0]) if args else 8
    groups = _largest_divisor(channels, wanted)
    if groups != wanted and spatial and (wanted, channels) not in _ADJUSTED:
        _ADJUSTED.add((wanted, channels))
        log.warning(
            "norm group:%d on %d channels: %d does not divide them, using %d groups", wanted, channels, wanted, groups
        )
    return nn.GroupNorm(groups, channels) if spatial else nn.LayerNorm(channels)


_ADJUSTED: set[tuple[int, int]] = set()  # (groups asked for, channels) already warned about


@NORMS.register("none")
def _none(channels: int, args: list[str], spatial: bool) -> nn.Module:
    return nn.Identity()


def _largest_divisor(channels: int, groups: int) -> int:
    while channels % groups:
        groups -= 1
    return groups


def norm(spec: str, channels: int, spatial: bool = True) -> nn.Module:
    """A normalization layer from 'batch', 'layer', 'instance', 'group:G' or 'none'."""
    name, args = parse_spec(spec)
    return NORMS.get(name)(channels, args, spatial)


def check_norm(spec: str) -> None:
    name, args = parse_spec(spec)
    NORMS.get(name)
    if name == "group" and args and (not args[0].isdigit() or int(args[0]) < 1):
        raise ConfigError(f"norm '{spec}': the group count must be a positive integer")
    args.allow(1 if name == "group" else 0)  # group:G; the others take none
    args.check_all_read(spec, "norm")


def conv_block(in_channels: int, out_channels: int, act: str, norm_spec: str, stride: int = 1) -> list[nn.Module]:
    """Conv3x3 - Norm - Activation; the conv has no bias when a norm follows (it would cancel)."""
    has_norm = parse_spec(norm_spec)[0] != "none"
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=not has_norm),
        norm(norm_spec, out_channels),
        activation(act),
    ]


@spec_check("activation")
def _check_activation(value: str, config: object) -> None:
    check_activation(value)


@spec_check("norm")
def _check_norm(value: str, config: object) -> None:
    check_norm(value)
