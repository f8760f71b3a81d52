"""Weight initialization schemes from the lectures, by name; conv fan-in is kernel_size^2 * in_channels."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..registry import Registry, parse_spec, spec_check, spec_float
from .layers import ACTIVATION_GAIN_NAME

log = logging.getLogger("convcoach")

WeightInit = Callable[[torch.Tensor, str], None]  # (weight, activation name) -> in place
INITS: Registry = Registry("init")


def _gain(act: str) -> float:
    return nn.init.calculate_gain(ACTIVATION_GAIN_NAME.get(act, "relu"))


@INITS.register("normal")
def _normal(spec: str, args: list[str]) -> WeightInit:
    """The lectures' small random numbers: W ~ N(0, std^2), std 0.01 by default."""
    std = spec_float(spec, args[0], "init") if args else 0.01
    if std < 0:
        raise ConfigError(f"init '{spec}': the standard deviation must be >= 0, got {std:g}")
    return lambda w, act: nn.init.normal_(w, 0.0, std)


@INITS.register("xavier", "xavier_normal")
def _xavier(spec: str, args: list[str]) -> WeightInit:
    """Glorot & Bengio 2010: Var(W) = 2 / (fan_in + fan_out) (= 1/Din for square layers)."""
    return lambda w, act: nn.init.xavier_normal_(w)


@INITS.register("xavier_uniform")
def _xavier_uniform(spec: str, args: list[str]) -> WeightInit:
    return lambda w, act: nn.init.xavier_uniform_(w)


@INITS.register("kaiming", "he", "kaiming_normal")
def _kaiming(spec: str, args: list[str]) -> WeightInit:
    """He et al. 2015: std = gain / sqrt(fan_in), gain sqrt(2) for ReLU."""
    return lambda w, act: nn.init.normal_(w, 0.0, _gain(act) / math.sqrt(nn.init._calculate_correct_fan(w, "fan_in")))


@INITS.register("kaiming_uniform")
def _kaiming_uniform(spec: str, args: list[str]) -> WeightInit:
    return lambda w, act: nn.init.kaiming_uniform_(w, nonlinearity=ACTIVATION_GAIN_NAME.get(act, "relu"))


@INITS.register("orthogonal")
def _orthogonal(spec: str, args: list[str]) -> WeightInit:
    return lambda w, act: nn.init.orthogonal_(w, gain=_gain(act))


@INITS.register("zeros")
def _zeros(spec: str, args: list[str]) -> WeightInit:
    """Every unit computes the same thing: shows the symmetry problem."""
    return lambda w, act: nn.init.zeros_(w)


@INITS.register("constant")
def _constant(spec: str, args: list[str]) -> WeightInit:
    value = spec_float(spec, args[0], "init") if args else 0.1
    return lambda w, act: nn.init.constant_(w, value)


@INITS.register("lsuv")
def _lsuv(spec: str, args: list[str]) -> WeightInit:
    """Orthogonal start; `initialize` then rescales each layer on a data batch (Mishkin & Matas 2015)."""
    return _orthogonal(spec, args)


@INITS.register("default")
def _default(spec: str, args: list[str]) -> WeightInit:
    return lambda w, act: None  # keep torch's own init


def check_init(spec: str) -> None:
    name, args = parse_spec(spec)
    if name != "auto":
        INITS.get(name)(spec, args)
        args.check_all_read(spec, "init")


def resolve_init(spec: str, act: str) -> str:
    """'auto' is kaiming for ReLU-like nets and xavier for tanh/sigmoid."""
    if spec != "auto":
        return spec
    return "xavier" if act in ("tanh", "sigmoid") else "kaiming"


def initialize(
    model: nn.Module,
    spec: str,
    act: str = "relu",
    zero_init_residual: bool = False,
    sample: torch.Tensor | None = None,
) -> str:
    """Initialize conv/linear weights in place (biases to zero); returns the scheme used."""
    spec = resolve_init(spec, act)
    name, args = parse_spec(spec)
    init_weight = INITS.get(name)(spec, args)
    if name == "default":
        return spec
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            init_weight(module.weight, act)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    if zero_init_residual:
        for module in model.modules():
            if getattr(module, "is_residual_last", False) and getattr(module, "weight", None) is not None:
                nn.init.zeros_(module.weight)
    if name == "lsuv":
        if sample is None:
            raise ConfigError("init 'lsuv' needs a data batch")
        lsuv(model, sample)
    return spec


@torch.no_grad()
def lsuv(model: nn.Module, sample: torch.Tensor, tolerance: float = 0.1, max_iters: int = 10) -> None:
    """Scale each conv/linear layer, in forward order, until its output variance on `sample` is ~1."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    for layer in layers:
        captured: dict[str, float] = {}
        # take the variance inside the hook: an in-place activation (ReLU(inplace=True)) right after the
        # layer would otherwise overwrite the captured output before it is read
        handle = layer.register_forward_hook(
            lambda mod, inp, out, store=captured: store.__setitem__("var", out.var().item())
        )
        for _ in range(max_iters):
            model(sample)
            variance = captured["var"]
            if not math.isfinite(variance) or variance < 1e-12 or abs(variance - 1.0) < tolerance:
                break
            layer.weight.div_(math.sqrt(variance))
        handle.remove()
    model.train(was_training)
    log.debug("LSUV rescaled %d layers", len(layers))


@spec_check("init")
def _check_init(value: str, config: object) -> None:
    check_init(value)
