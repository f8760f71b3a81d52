"""Pooling choices for the conv nets: max, average, and fractional max pooling (Graham 2014)."""

from __future__ import annotations

import torch.nn as nn

from ..registry import Registry, parse_spec

POOLS: Registry = Registry("pooling")
POOLS.register("max")(lambda args: nn.MaxPool2d(2))
POOLS.register("avg")(lambda args: nn.AvgPool2d(2))
# output = input / ratio, with pseudo-random pooling regions; ratio in (1, 2), default 1/0.7
POOLS.register("fractional")(lambda args: nn.FractionalMaxPool2d(2, output_ratio=float(args[0]) if args else 0.7))


def pool_layer(spec: str) -> nn.Module:
    name, args = parse_spec(spec)
    layer = POOLS.get(name)(args)
    args.check_all_read(spec, "pooling")
    return layer
