"""How close the default training step comes to this CPU's limit, as a ratio (issue 25, part 2).

In one process, alternating: the achieved FLOP/s of a training step (forward + backward + the
optimizer step; FLOPs counted by torch.utils.flop_counter on the step's forward and backward) of the
default net and the long recipe's, in fp32 and bf16, against the measured peak of a large matmul on
the same cores in the same precision. Then a torch.profiler breakdown of where the step's time goes,
and the ceiling it implies: the step's FLOPs over the convolution kernels' own time alone (what the
step would reach if BatchNorm, pooling, activations, the optimizer and Python cost nothing).

    python benchmarks/utilization.py [--batch 256] [--rounds 3] [--out benchmarks/results/utilization.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from convcoach import TrainConfig
from convcoach.models.spec import build_model, model_spec
from convcoach.precision import autocast, cpu_has_native_bf16
from convcoach.train.optim import create_optimizer
from convcoach.train.setup import effective_lr, optim_settings

# the long recipe trains width 48 where bf16 is native and width 32 in fp32 (its `fp32:` block)
NETS = {"default": {}, "long recipe": {"depth": 14, "width": 48}, "long recipe in fp32": {"depth": 14, "width": 32}}


def host() -> dict:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        text = ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if "Model name" in line), "?")
    flags = next((line for line in text.splitlines() if line.startswith("Flags")), "")
    return {
        "cpu": model,
        "flags": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags],
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
    }


def matmul_peak(precision: str, n: int = 4096, repeats: int = 5) -> float:
    """FLOP/s of an n x n x n matmul (2 n^3 FLOPs), the best of `repeats`."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


class Step:
    """One training step of a net as convcoach's default run makes it (model, optimizer, channels_last)."""

    def __init__(self, options: dict, batch: int) -> None:
        config = TrainConfig(**{k: v for k, v in options.items() if k in ("depth", "width")})
        torch.manual_seed(0)
        self.model = build_model(model_spec(config, (1, 28, 28), 10)).to(memory_format=torch.channels_last)
        lr = effective_lr(config)
        self.optimizer = create_optimizer(config.optimizer, self.model, optim_settings(config, lr))
        self.x = torch.randn(batch, 1, 28, 28).contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, 10, (batch,))

    def __call__(self, precision: str) -> None:
        with autocast(precision, torch.device("cpu")):
            loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def flops(self) -> int:
        counter = FlopCounterMode(display=False)
        with counter:
            loss = F.cross_entropy(self.model(self.x), self.y)
            loss.backward()
        self.optimizer.zero_grad(set_to_none=True)
        return counter.get_total_flops()

    def seconds(self, precision: str, steps: int = 5) -> float:
        self(precision)
        start = time.perf_counter()
        for _ in range(steps):
            self(precision)
        return (time.perf_counter() - start) / steps


CATEGORIES = [
    ("convolution", ("conv", "mkldnn_convolution")),
    ("batch norm", ("batch_norm", "batchnorm")),
    ("pooling", ("pool",)),
    ("optimizer (incl. Newton-Schulz)", ("optimizer", "muon", "_foreach")),
    ("activation", ("relu", "threshold")),
    ("loss", ("cross_entropy", "log_softmax", "nll_loss")),
]


def category(event: object) -> str:
    """The category of the outermost operator or autograd node around this event that has one, so that an
    op inside a conv's backward (the matmul weight gradient's copies and matmul) counts as convolution and
    one inside the optimizer's step as optimizer."""
    chain = []
    while event is not None:
        chain.append(event.name.lower())
        event = event.cpu_parent
    for name in reversed(chain):
        found = next((c for c, keys in CATEGORIES if any(k in name for k in keys)), None)
        if found:
            return found
    return "other"


def profile(step: Step, precision: str, steps: int = 3) -> dict[str, float]:
    """Self CPU time per category of operator, in ms per step (under the profiler)."""
    step(precision)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step(precision)
    ms: dict[str, float] = defaultdict(float)
    for event in prof.events():
        ms[category(event)] += event.self_cpu_time_total / 1e3 / steps
    return dict(sorted(ms.items(), key=lambda kv: -kv[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/utilization.json")
    args = parser.parse_args()
    precisions = ["fp32", "bf16"] if cpu_has_native_bf16() else ["fp32"]
    steps = {name: Step(options, args.batch) for name, options in NETS.items()}
    flops = {name: step.flops() for name, step in steps.items()}
    peak: dict[str, list[float]] = defaultdict(list)
    step_s: dict[tuple[str, str], list[float]] = defaultdict(list)
    for _ in range(args.rounds):  # alternating, so every figure sees the same host state
        for precision in precisions:
            peak[precision].append(matmul_peak(precision))
            for name, step in steps.items():
                step_s[(name, precision)].append(step.seconds(precision))
    result: dict = {"host": host(), "batch": args.batch, "peak_gflops": {}, "nets": {}}
    for precision in precisions:
        result["peak_gflops"][precision] = round(max(peak[precision]) / 1e9, 1)
    for name in steps:
        entry = {"gflop_per_step": round(flops[name] / 1e9, 2)}
        for precision in precisions:
            seconds = min(step_s[(name, precision)])
            achieved = flops[name] / seconds
            ms = profile(steps[name], precision)
            total_ms = sum(ms.values())
            # the ceiling: the step's FLOPs at the convolution kernels' own speed, everything else free
            conv_alone = flops[name] / (ms["convolution"] / 1e3)
            entry[precision] = {
                "step_ms": round(seconds * 1e3, 1),
                "images_per_second": round(args.batch / seconds),
                "achieved_gflops": round(achieved / 1e9, 1),
                "of_matmul_peak": round(achieved / max(peak[precision]), 3),
                "profile": {category: round(value / total_ms, 3) for category, value in ms.items()},
                "profile_ms_per_step": {category: round(value, 2) for category, value in ms.items()},
                "convolutions_alone_gflops": round(conv_alone / 1e9, 1),
                "convolutions_alone_of_matmul_peak": round(conv_alone / max(peak[precision]), 3),
            }
        result["nets"][name] = entry
    print(json.dumps(result, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
