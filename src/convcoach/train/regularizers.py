"""Weight penalties lambda * R(W) added to the data loss: L2, L1 and elastic net."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..registry import parse_spec, spec_check, spec_float

KINDS = ("l1", "l2", "elastic")


@dataclass
class Penalty:
    """R(W): l2 = sum W^2, l1 = sum |W|, elastic = sum beta * W^2 + |W| (the lectures' form)."""

    kind: str
    strength: float
    beta: float = 1.0

    def __call__(self, params: list[torch.Tensor]) -> torch.Tensor:
        total = params[0].new_zeros(())
        for weight in params:
            if self.kind == "l2":
                total = total + weight.pow(2).sum()
            elif self.kind == "l1":
                total = total + weight.abs().sum()
            else:
                total = total + self.beta * weight.pow(2).sum() + weight.abs().sum()
        return self.strength * total


def parse_reg(spec: str | None) -> Penalty | None:
    """'l2:1e-4', 'l1:1e-5', 'elastic:1e-4[:beta]' or None/'none'."""
    if not spec or spec.lower() == "none":
        return None
    kind, args = parse_spec(spec)
    if kind not in KINDS or not args:
        raise ConfigError(f"reg '{spec}': expected l1:LAMBDA, l2:LAMBDA or elastic:LAMBDA[:BETA]")
    strength = spec_float(spec, args[0], "reg")
    beta = spec_float(spec, args[1], "reg") if kind == "elastic" and len(args) > 1 else 1.0
    args.check_all_read(spec, "reg")
    if strength < 0:
        raise ConfigError(f"reg '{spec}': lambda must be >= 0")
    return Penalty(kind, strength, beta)


def penalized_parameters(model: nn.Module, include_all: bool = False) -> list[torch.Tensor]:
    """Conv and linear weights; biases and norm parameters only when asked."""
    if include_all:
        return [p for p in model.parameters() if p.requires_grad]
    return [
        module.weight
        for module in model.modules()
        if isinstance(module, (nn.Conv2d, nn.Linear)) and module.weight.requires_grad
    ]


@spec_check("reg")
def _check_reg(value: str | None, config: object) -> None:
    parse_reg(value)
