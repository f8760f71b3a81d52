"""Muon's optimizer step on the default net (15 conv filter banks + Nesterov SGD on the rest), against the
same math as the step was before session 17 (unfused Newton-Schulz, kernels per bank, per-tensor SGD),
alternating in one process.

    python benchmarks/muon_step.py [--rounds 5] [--out benchmarks/results/muon_step.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from convcoach import TrainConfig
from convcoach.models.spec import build_model, model_spec
from convcoach.train.muon import NS_COEFFICIENTS, Muon, split_filters


def unfused_orthogonalize(matrix: torch.Tensor, steps: int, eps: float = 1e-7) -> torch.Tensor:
    """The quintic iteration written out (8 kernels an iteration), as before session 17."""
    a, b, c = NS_COEFFICIENTS
    x = matrix.float()
    x = x / (torch.linalg.vector_norm(x, dim=(-2, -1), keepdim=True) + eps)
    wide = x.shape[-2] <= x.shape[-1]
    if not wide:
        x = x.mT
    for _ in range(steps):
        gram = x @ x.mT
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x if wide else x.mT


class PerBank(Muon):
    """The reference, the step before session 17: a stack and an unfused iteration per filter shape, then
    each bank's update and renormalization as kernels of its own (the rest: Muon's own Nesterov SGD)."""

    def step(self, closure: object = None) -> None:
        with torch.no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if not group["orthogonal"]:
                    self._sgd_step(params, group)
                    continue
                by_shape: dict[torch.Size, list[torch.Tensor]] = {}
                for p in params:
                    by_shape.setdefault(p.shape, []).append(p)
                for same in by_shape.values():
                    self._shape_step(same, group)

    def _shape_step(self, params: list[torch.Tensor], group: dict) -> None:
        for p in params:
            if not self.state[p]:
                self.state[p]["momentum_buffer"] = torch.zeros_like(p)
                self.state[p]["norm"] = p.norm().float()
        buffers = [self.state[p]["momentum_buffer"] for p in params]
        grads = [p.grad for p in params]
        torch._foreach_mul_(buffers, group["momentum"])
        torch._foreach_add_(buffers, grads)
        directions = torch._foreach_add(grads, buffers, alpha=group["momentum"])
        updates = unfused_orthogonalize(torch.stack([d.reshape(len(d), -1) for d in directions]), group["ns_steps"])
        scales = group["lr"] / torch.linalg.vector_norm(updates, dim=(1, 2)).clamp_min(1e-12)
        for p, update, scale in zip(params, updates, scales):
            norm = self.state[p]["norm"]
            p.sub_((update.reshape(p.shape) * (scale * norm)).to(p.dtype))
            p.mul_(norm / p.norm().clamp_min(1e-12))


def optimizer(kind: type[Muon]) -> tuple[torch.optim.Optimizer, list[torch.Tensor]]:
    torch.manual_seed(0)
    config = TrainConfig().validate()
    model = build_model(model_spec(config, (1, 28, 28), 10)).to(memory_format=torch.channels_last)
    params = list(model.parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    return kind(split_filters([{"params": params}], 0.8, config.muon_lr), lr=0.8, momentum=0.9), params


def milliseconds(opt: torch.optim.Optimizer, steps: int = 50) -> float:
    opt.step()
    start = time.perf_counter()
    for _ in range(steps):
        opt.step()
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/muon_step.json"))
    args = parser.parse_args()
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from utilization import host

    (now, now_params), (before, before_params) = optimizer(Muon), optimizer(PerBank)
    times: dict[str, list[float]] = {"now": [], "before": []}
    for _ in range(args.rounds):  # alternating: both see the same host state
        times["now"].append(milliseconds(now))
        times["before"].append(milliseconds(before))
    difference = max((a - b).abs().max().item() for a, b in zip(now_params, before_params))
    result = {
        "host": host(),
        "banks": sum(p.ndim == 4 for p in now_params),
        "step_ms": {name: round(min(values), 2) for name, values in times.items()},
        "rounds_ms": {name: [round(v, 2) for v in values] for name, values in times.items()},
        "max_weight_difference": difference,
    }
    print(json.dumps(result, indent=1))
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
