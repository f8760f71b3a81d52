"""The bf16 training step of the wide nets on CPU: oneDNN's 3x3 weight gradient against convcoach's
matmul one, Newton-Schulz in fp32 against bf16, and the whole step with and without both (issue 25,
part 2, session 19).

In one process, alternating; per conv shape of ResNet-14 at widths 16, 32 and 48 (batch 256,
channels_last, bf16): the median time of oneDNN's weight gradient (`convolution_backward` asked for
the weight only) and of `convcoach.models.conv.weight_grad`, with their relative difference; per
filter-matrix stack, Muon's orthogonalization in fp32 and bf16; then whole training steps (forward,
backward, Muon) with both paths off and on, in alternating rounds.

    python benchmarks/wide_step.py [--rounds 8] [--out benchmarks/results/wide_step.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from utilization import Step, host

from convcoach.models import conv
from convcoach.train import muon

WIDTHS = (16, 32, 48)
PATHS_OFF = {"small_map": 0, "bf16_from": 10**12}


def median_ms(fn: Callable[[], object], repeats: int = 15) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def weight_gradient(channels: int, size: int, out: int, stride: int) -> dict:
    """oneDNN's weight gradient of one 3x3 conv shape against the matmul one (batch 256, bf16)."""
    x = torch.randn(256, channels, size, size, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(out, channels, 3, 3, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(F.conv2d(x, weight, stride=stride, padding=1))

    def onednn() -> torch.Tensor:
        args = (grad, x, weight, None, [stride] * 2, [1, 1], [1, 1], False, [0, 0], 1, [False, True, False])
        return torch.ops.aten.convolution_backward(*args)[1]

    def matmul() -> torch.Tensor:
        return conv.weight_grad(x, grad, stride)

    expected, got = onednn().float(), matmul().float()
    return {
        "conv": f"{channels}->{out} at {size}x{size}, stride {stride}",
        "onednn_ms": round(median_ms(onednn), 2),
        "matmul_ms": round(median_ms(matmul), 2),
        "relative_difference": float(f"{((got - expected).norm() / expected.norm()).item():.1e}"),
    }


def weight_gradients(width: int) -> list[dict]:
    """Every 3x3 block conv shape of ResNet-14 at this width: (in channels, map size, out channels, stride)."""
    shapes = [(width, 14, width, 1), (width, 14, 2 * width, 2), (2 * width, 7, 2 * width, 1)]
    shapes += [(2 * width, 7, 4 * width, 2), (4 * width, 4, 4 * width, 1)]
    return [{"width": width, **weight_gradient(*shape)} for shape in shapes]


def orthogonalization(count: int, out: int, fan_in: int) -> dict:
    stack = torch.randn(count, out, fan_in)
    row: dict = {"stack": f"{count} x {out} x {fan_in}", "entries": out * fan_in}
    for name, dtype in (("fp32_ms", torch.float32), ("bf16_ms", torch.bfloat16)):
        row[name] = round(median_ms(functools.partial(muon.orthogonalize, stack, 3, dtype=dtype)), 3)
    return row


def newton_schulz() -> list[dict]:
    return [orthogonalization(*shape) for shape in [(3, 64, 576), (3, 96, 864), (3, 128, 1152), (3, 192, 1728)]]


def whole_steps(rounds: int) -> dict:
    shipped = {"small_map": conv.SMALL_MAP, "bf16_from": muon.BF16_FROM}
    result = {}
    for width in WIDTHS:
        step = Step({"depth": 14, "width": width}, 256)
        times: dict[str, list[float]] = {"without": [], "with": []}
        for _ in range(rounds):
            for name, paths in (("without", PATHS_OFF), ("with", shipped)):
                conv.SMALL_MAP, muon.BF16_FROM = paths["small_map"], paths["bf16_from"]
                step("bf16")
                for _ in range(3):
                    start = time.perf_counter()
                    step("bf16")
                    times[name].append((time.perf_counter() - start) * 1e3)
        conv.SMALL_MAP, muon.BF16_FROM = shipped["small_map"], shipped["bf16_from"]
        result[f"width {width}"] = {
            name: {"best_ms": round(min(ms), 1), "median_ms": round(statistics.median(ms), 1)}
            for name, ms in times.items()
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/wide_step.json"))
    args = parser.parse_args()
    report = {
        "host": host(),
        "weight_gradient": [row for width in WIDTHS for row in weight_gradients(width)],
        "newton_schulz": newton_schulz(),
        "training_step_bf16_batch_256": whole_steps(args.rounds),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
