"""Training images/s in fp32 vs bf16 autocast (both channels_last) for ResNet sizes, and what
`--precision auto` decides on this CPU: the evidence behind the default recipe's epoch count.

Run: python benchmarks/precision_throughput.py [--batch 256] [--steps 10] [--rounds 3] [--threads N]
Rounds alternate fp32 and bf16 steps of the same model; each figure is the best round (shared host)."""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from convcoach.models import create_model
from convcoach.precision import autocast, cpu_has_native_bf16, resolve_precision

# (label, resnet options): the default net, the long recipe's, and the shallower/wider candidates
MODELS = [
    ("resnet-14 width 16 (default)", {"depth": 14, "width": 16}),
    ("resnet-8 width 32", {"depth": 8, "width": 32}),
    ("resnet-14 width 32 (long recipe in fp32)", {"depth": 14, "width": 32}),
    ("resnet-14 width 48 (long recipe in bf16)", {"depth": 14, "width": 48}),
    ("resnet-8 width 64", {"depth": 8, "width": 64}),
]


def images_per_second(options: dict, precision: str, batch: int, steps: int, rounds: int) -> float:
    torch.manual_seed(0)
    model = create_model("resnet", (1, 28, 28), 10, **options).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    images = torch.randn(batch, 1, 28, 28).to(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (batch,))
    device = torch.device("cpu")

    def step() -> None:
        with autocast(precision, device):
            loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        best = max(best, batch * steps / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for label, options in MODELS:
        fp32 = images_per_second(options, "fp32", args.batch, args.steps, args.rounds)
        bf16 = images_per_second(options, "bf16", args.batch, args.steps, args.rounds)
        rows.append({"model": label, "fp32": round(fp32), "bf16": round(bf16), "speedup": round(bf16 / fp32, 2)})
    auto, reason = resolve_precision("auto", torch.device("cpu"))
    print(
        json.dumps(
            {
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "native_bf16": cpu_has_native_bf16(),
                "auto": auto,
                "auto_reason": reason,
                "threads": torch.get_num_threads(),
                "batch": args.batch,
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
