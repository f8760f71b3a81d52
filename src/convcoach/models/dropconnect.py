"""DropConnect (Wan et al. 2013): a Linear layer that drops weights, not activations, in training."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class DropConnectLinear(nn.Linear):
    """Linear whose weights are each zeroed with probability p per mini-batch in training and the
    survivors scaled by 1/(1-p) (inverted, as for dropout), so eval uses all weights unscaled.

    Wan et al. approximate inference by sampling a Gaussian; the lectures' "use all weights at test"
    with inverted scaling keeps the expected pre-activation equal instead. The state dict is a plain
    Linear's, so checkpoints load into models built without DropConnect."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, p: float = 0.5) -> None:
        super().__init__(in_features, out_features, bias)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return F.linear(x, self.weight, self.bias)
        keep = torch.rand_like(self.weight) >= self.p
        return F.linear(x, self.weight * keep / (1 - self.p), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


def apply_dropconnect(model: nn.Module, p: float) -> nn.Module:
    """Replace every nn.Linear in `model` by a DropConnectLinear sharing its parameters; returns the model."""
    if p <= 0:
        return model
    for name, child in list(model.named_children()):
        if type(child) is nn.Linear:
            wrapped = DropConnectLinear(child.in_features, child.out_features, child.bias is not None, p)
            wrapped.weight, wrapped.bias = child.weight, child.bias
            setattr(model, name, wrapped)
        else:
            apply_dropconnect(child, p)
    return model
