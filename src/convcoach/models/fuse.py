"""BatchNorm folding for inference: a BN that directly follows a conv or linear layer (or a conv
then a max-pool, when every BN scale is positive) becomes part of that layer's weights and bias,
and the BN itself an Identity (the lectures' "zero overhead at test time: can be fused with conv")."""

from __future__ import annotations

import copy
from collections import Counter

import torch
import torch.fx
import torch.nn as nn

from ..errors import ConfigError
from .conv import Conv2d

FOLDABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@torch.no_grad()
def fold_bn(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> None:
    """In place: W' = W * gamma / sqrt(var + eps) per output unit, b' = (b - mean) * gamma / sqrt(var + eps) + beta."""
    scale = bn.running_var.add(bn.eps).rsqrt()
    if bn.affine:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.affine:
        shift = shift + bn.bias
    bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
    layer.weight.mul_(scale.view(-1, *[1] * (layer.weight.dim() - 1)).to(layer.weight.dtype))
    layer.bias = nn.Parameter((bias * scale + shift).to(layer.weight.dtype))


class _LayerTracer(torch.fx.Tracer):
    """fx's tracer, with convcoach's own Conv2d kept whole like torch.nn's layers (a call_module node)."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, Conv2d) or super().is_leaf_module(m, module_qualified_name)


def foldable_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(layer, bn) module names where the BN is the only consumer of a conv/linear output, found by
    tracing the forward pass with torch.fx (so the data flow, not the attribute order, decides)."""
    try:
        graph = _LayerTracer().trace(model)
    except Exception as exc:  # fx cannot trace data-dependent Python control flow
        raise ConfigError(
            f"cannot fold BatchNorm in {type(model).__name__}: its forward pass does not trace ({type(exc).__name__})"
        ) from None
    modules = dict(model.named_modules())
    calls = Counter(node.target for node in graph.nodes if node.op == "call_module")
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), BATCHNORMS):
            continue
        source = node.args[0]
        if _is_max_pool(source, modules) and len(source.users) == 1 and _positive_scale(modules[node.target]):
            source = source.args[0]  # max commutes with a per-channel affine map of positive scale
        # a layer or BN used twice (shared weights) would change its other use too: leave it
        if (
            isinstance(source, torch.fx.Node)
            and source.op == "call_module"
            and isinstance(modules.get(source.target), FOLDABLE)
            and len(source.users) == 1
            and calls[source.target] == 1
            and calls[node.target] == 1
        ):
            pairs.append((source.target, node.target))
    return pairs


def _is_max_pool(node: object, modules: dict[str, nn.Module]) -> bool:
    return (
        isinstance(node, torch.fx.Node)
        and node.op == "call_module"
        and isinstance(modules.get(node.target), nn.MaxPool2d)
    )


def _positive_scale(bn: nn.Module) -> bool:
    return not bn.affine or bool((bn.weight > 0).all())


def fuse_bn(model: nn.Module, inplace: bool = False) -> nn.Module:
    """An eval-mode model whose conv/linear + BN pairs are folded; outputs match the unfused model
    in eval mode. The module tree is kept (each folded BN becomes nn.Identity, its layer gains a bias),
    so a fused state dict loads into `fuse_bn(build_model(spec))`."""
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    for layer_name, bn_name in foldable_pairs(model):
        fold_bn(model.get_submodule(layer_name), model.get_submodule(bn_name))
        parent_name, _, child = bn_name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, nn.Identity())
    return model


def count_batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, BATCHNORMS) for m in model.modules())
