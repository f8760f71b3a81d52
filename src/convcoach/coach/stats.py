"""Per-layer activation statistics (mean, std, saturated, dead) and what they say about the init."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn as nn

# activation module -> mask of saturated outputs; the lectures' tanh saturates at |y| > 0.99
SATURATION: dict[type[nn.Module], Callable[[torch.Tensor], torch.Tensor]] = {
    nn.Tanh: lambda y: y.abs() > 0.99,
    nn.Sigmoid: lambda y: (y < 0.01) | (y > 0.99),
    nn.Hardtanh: lambda y: y.abs() >= 0.99,
}
DEAD_CAPABLE = (nn.ReLU, nn.ReLU6)  # a zero output passes a zero gradient: the unit cannot recover
ACTIVATION_TYPES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardtanh,
    nn.Softplus,
    nn.Mish,
)

SHRINK_WARN, SHRINK_FAIL = 0.2, 0.01  # last/first layer std
GROW_WARN = 5.0
SATURATED_WARN, SATURATED_FAIL = 0.2, 0.5
DEAD_WARN = 0.5


@dataclass
class LayerStats:
    """Statistics of one activation layer's output on one batch; a unit is a channel (conv) or a feature."""

    index: int  # 1-based, in forward order
    name: str
    kind: str  # module class, e.g. Tanh
    mean: float
    std: float
    saturated: float | None  # fraction of outputs in the flat tails (tanh, sigmoid)
    dead: float | None  # fraction of units that are zero for the whole batch (ReLU)
    values: torch.Tensor | None = field(default=None, repr=False)  # a sample of outputs, for histograms

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row.pop("values")
        return row


@dataclass
class Finding:
    """One verdict on the statistics: `severity` warn or fail, a message and a fix."""

    severity: str
    message: str
    fix: str


def watched_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Activation modules in forward order; conv/linear layers when the model has none (functional activations)."""
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, ACTIVATION_TYPES)]
    return layers or [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def moments(y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean and (unbiased) std as tensors; std from E[y^2] - mean^2, because torch.std_mean is ~6x
    slower on CPU and the monitors call this on training batches."""
    count = y.numel()
    mean = y.mean()
    second = torch.linalg.vector_norm(y).square() / count
    return {"mean": mean, "std": ((second - mean * mean).clamp_min(0) * (count / max(count - 1, 1))).sqrt()}


def unit_stats(module: nn.Module, output: torch.Tensor) -> dict[str, torch.Tensor]:
    """Tensors (not floats: the caller syncs once) of mean, std, saturated and dead fractions."""
    y = output.detach()
    y = y if y.dtype == torch.float32 else y.float()  # bf16/fp16 sums lose the small means
    result = moments(y)
    saturation = SATURATION.get(type(module))
    if saturation is not None:
        result["saturated"] = saturation(y).float().mean()
    if isinstance(module, DEAD_CAPABLE) and y.dim() >= 2:
        others = [0, *range(2, y.dim())]  # units = dim 1 (channels or features)
        result["dead"] = (y.amax(dim=others) <= 0).float().mean()
    return result


@torch.no_grad()
def activation_stats(model: nn.Module, x: torch.Tensor, keep_values: int = 0) -> list[LayerStats]:
    """Forward `x` once (in the model's current mode) and describe every activation layer's output.

    `keep_values` > 0 keeps a random sample of that many outputs per layer (for histograms)."""
    captured: list[tuple[str, nn.Module, dict[str, torch.Tensor], torch.Tensor | None]] = []

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor, name: str) -> None:
        # read inside the hook: an in-place op after this layer would overwrite `output`
        sample = None
        if keep_values:
            flat = output.detach().float().flatten()
            sample = (
                flat[torch.randperm(flat.numel(), device=flat.device)[:keep_values]].cpu()
                if flat.numel() > keep_values
                else flat.cpu().clone()
            )
        captured.append((name, module, unit_stats(module, output), sample))

    handles = [
        m.register_forward_hook(lambda mod, inp, out, n=name: hook(mod, inp, out, n))
        for name, m in watched_layers(model)
    ]
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    stats = []
    for index, (name, module, values, sample) in enumerate(captured, start=1):
        numbers = {k: v.item() for k, v in values.items()}
        stats.append(
            LayerStats(
                index,
                name,
                type(module).__name__,
                numbers["mean"],
                numbers["std"],
                numbers.get("saturated"),
                numbers.get("dead"),
                sample,
            )
        )
    return stats


def interpret(stats: list[LayerStats]) -> list[Finding]:
    """The lectures' reading of an activation table: shrinking, growing, saturated or dead layers."""
    findings: list[Finding] = []
    bad = [s for s in stats if not (math.isfinite(s.std) and math.isfinite(s.mean))]
    if bad:
        return [
            Finding(
                "fail",
                f"layer {bad[0].index} ({bad[0].name}) outputs NaN/inf at init",
                "check the inputs for NaN/inf and lower the init std",
            )
        ]
    dead = [s for s in stats if s.dead is not None and s.dead >= DEAD_WARN]
    if dead:
        worst = max(dead, key=lambda s: s.dead or 0.0)
        findings.append(
            Finding(
                "fail" if (worst.dead or 0.0) >= 1.0 else "warn",
                f"dead units: {worst.dead:.0%} of the ReLU units of layer {worst.index} ({worst.name}) "
                "are zero for the whole batch",
                "look for large negative biases or a too-small init std; try --activation leaky_relu or --norm batch",
            )
        )
    saturated = [s for s in stats if s.saturated is not None and s.saturated >= SATURATED_WARN]
    if saturated:
        worst = max(saturated, key=lambda s: s.saturated or 0.0)
        findings.append(
            Finding(
                "fail" if (worst.saturated or 0.0) >= SATURATED_FAIL else "warn",
                f"saturated: {worst.saturated:.0%} of layer {worst.index} ({worst.kind}) "
                "outputs sit in the flat tails: init std too large",
                "use --init xavier (tanh/sigmoid) or kaiming (ReLU), or add --norm batch",
            )
        )
    live = [s for s in stats if not (s.dead is not None and s.dead >= DEAD_WARN)]
    if len(live) >= 3 and not saturated:
        first, last = live[0].std, live[-1].std
        ratios = [b.std / a.std for a, b in zip(live, live[1:]) if a.std > 0]
        if first > 0 and last / first < SHRINK_WARN and sum(r < 1 for r in ratios) >= 0.7 * len(ratios):
            layer = next(s for s in live if s.std < SHRINK_WARN * first)
            findings.append(
                Finding(
                    "fail" if last / first < SHRINK_FAIL else "warn",
                    f"activations shrink towards zero by layer {layer.index} (std {first:.2g} -> {last:.2g}): "
                    "init std too small",
                    "use --init xavier (tanh/sigmoid) or kaiming (ReLU), or add --norm batch",
                )
            )
        elif first > 0 and last / first > GROW_WARN and sum(r > 1 for r in ratios) >= 0.7 * len(ratios):
            findings.append(
                Finding(
                    "warn",
                    f"activations grow layer by layer (std {first:.2g} -> {last:.2g}): init std too large",
                    "use --init xavier (tanh/sigmoid) or kaiming (ReLU), or add --norm batch",
                )
            )
    return findings
