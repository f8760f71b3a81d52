"""Optimizers by name (torch.optim, plus muon.py's Muon); no weight decay on biases and norm parameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..registry import Registry, spec_check
from .muon import Muon, split_filters


@dataclass
class OptimSettings:
    lr: float | None = None
    momentum: float = 0.9
    momentum_convention: str = "sum"  # sum: v = rho*v + g ; ema: v = rho*v + (1-rho)*g
    weight_decay: float = 0.0
    muon_lr: float = 0.02  # muon: relative step of each conv filter bank per update


OPTIMIZERS: Registry[Callable[[list, OptimSettings], torch.optim.Optimizer]] = Registry("optimizer")
# nesterov is the default recipe's optimizer: 0.8 suits its BatchNorm ResNet with He init (BN makes
# the conv layers scale-invariant, so He init's larger weights lower the effective step)
DEFAULT_LR = {
    "sgd": 0.1,
    "momentum": 0.05,
    "nesterov": 0.8,
    "adagrad": 0.01,
    "rmsprop": 1e-3,
    "adam": 1e-3,
    "adamw": 1e-3,
    "muon": 0.8,
}


def _lr(name: str, settings: OptimSettings) -> float:
    return settings.lr if settings.lr is not None else DEFAULT_LR[name]


def _dampening(settings: OptimSettings) -> float:
    # torch: v = rho*v + (1 - dampening)*g, so dampening = rho gives the (1 - rho) form
    return settings.momentum if settings.momentum_convention == "ema" else 0.0


@OPTIMIZERS.register("sgd")
def _sgd(groups: list, s: OptimSettings) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=_lr("sgd", s), weight_decay=s.weight_decay)


@OPTIMIZERS.register("momentum")
def _momentum(groups: list, s: OptimSettings) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        groups, lr=_lr("momentum", s), momentum=s.momentum, dampening=_dampening(s), weight_decay=s.weight_decay
    )


@OPTIMIZERS.register("nesterov")
def _nesterov(groups: list, s: OptimSettings) -> torch.optim.Optimizer:
    # torch's Nesterov needs zero dampening, so only the "sum" convention applies here
    return torch.optim.SGD(
        groups, lr=_lr("nesterov", s), momentum=s.momentum, nesterov=True, weight_decay=s.weight_decay
    )


@OPTIMIZERS.register("adagrad")
def _adagrad(groups: list, s: OptimSettings) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(groups, lr=_lr("adagrad", s), weight_decay=s.weight_decay)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(groups: list, s: OptimSettings) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(groups, lr=_lr("rmsprop", s), alpha=0.99, weight_decay=s.weight_decay)


@OPTIMIZERS.register("adam")
def _adam(groups: list, s: OptimSettings) -> torch.optim.Optimizer:
    """`momentum` is beta1, the first moment's decay (as fastai's `mom`); beta2 is 0.999."""
    return torch.optim.Adam(groups, lr=_lr("adam", s), betas=(s.momentum, 0.999), weight_decay=s.weight_decay)


@OPTIMIZERS.register("adamw")
def _adamw(groups: list, s: OptimSettings) -> torch.optim.Optimizer:
    """Decoupled weight decay (Loshchilov & Hutter 2019), unlike L2 in the loss; `momentum` is beta1."""
    return torch.optim.AdamW(groups, lr=_lr("adamw", s), betas=(s.momentum, 0.999), weight_decay=s.weight_decay)


@OPTIMIZERS.register("muon")
def _muon(groups: list, s: OptimSettings) -> torch.optim.Optimizer:
    """Conv filters take orthogonalized steps of relative size `muon_lr`; the rest Nesterov SGD at `lr`."""
    lr = _lr("muon", s)
    return Muon(split_filters(groups, lr, s.muon_lr), lr=lr, momentum=s.momentum, weight_decay=s.weight_decay)


# the optimizers that read `momentum` (adam/adamw as beta1) and `momentum_convention`; the others ignore them
USES_MOMENTUM = ("momentum", "nesterov", "adam", "adamw", "muon")
USES_CONVENTION = ("momentum",)


def parameter_groups(model: nn.Module, weight_decay: float, frozen_too: bool = False) -> list[dict]:
    """Two groups: decayed conv/linear weights, and undecayed biases and norm parameters; frozen
    parameters only with `frozen_too` (gradual unfreezing: they get no gradient, so no step, until thawed)."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not (param.requires_grad or frozen_too):
                continue
            if name == "weight" and isinstance(module, (nn.Conv2d, nn.Linear)):
                decay.append(param)
            else:
                no_decay.append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def create_optimizer(
    name: str, model: nn.Module, settings: OptimSettings, groups: list[dict] | None = None
) -> torch.optim.Optimizer:
    """Build a named optimizer over `groups` (default: decay / no-decay groups of `model`)."""
    groups = groups if groups is not None else parameter_groups(model, settings.weight_decay)
    return OPTIMIZERS.get(name)(groups, settings)


def default_lr(name: str) -> float:
    return DEFAULT_LR[name]


@spec_check("optimizer")
def _check_optimizer(value: str, config: object) -> None:
    OPTIMIZERS.get(value)
