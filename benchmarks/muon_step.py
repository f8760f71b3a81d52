"""Muon's optimizer step on the default net (15 conv filter banks + Nesterov SGD on the rest), against the
same math with a few kernels per bank (the step before session 17), interleaved in one process.

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
from convcoach.train.muon import Muon, orthogonalize, split_filters


class PerBank(Muon):
    """The reference: each bank's momentum, update and renormalization as its own kernels."""

    def _orthogonal_step(self, params: list[torch.Tensor], group: dict) -> None:
        for p in params:
            state = self.state[p]
            if not state:
                state["momentum_buffer"] = torch.zeros_like(p)
                state["norm"] = p.norm().float()
            buffer = state["momentum_buffer"].mul_(group["momentum"]).add_(p.grad)
            direction = p.grad.add(buffer, alpha=group["momentum"]).reshape(len(p), -1)
            update = orthogonalize(direction, group["ns_steps"])
            p.sub_((update * (group["lr"] * state["norm"] / update.norm().clamp_min(1e-12))).view(p.shape))
            p.mul_(state["norm"] / p.norm().clamp_min(1e-12))


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
    times: dict[str, list[float]] = {"foreach": [], "per_bank": []}
    for _ in range(args.rounds):  # alternating: both see the same host state
        times["foreach"].append(milliseconds(now))
        times["per_bank"].append(milliseconds(before))
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
