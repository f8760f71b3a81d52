"""`--lr auto`'s range test in fp32 against bf16 autocast, alternating in one process: seconds per test
and the LR each picks, per model, on Fashion-MNIST (2,000 training images; batch 256 as the default run).

    python benchmarks/lr_range_precision.py [--models cnn vgg resnet] [--rounds 2] [--out FILE]

On a CPU without native bf16 the bf16 column is emulated and slower: the range test then runs in fp32,
as the run does (`train/lr_finder.py`, sweep_precision)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import torch

from convcoach.config import TrainConfig
from convcoach.precision import cpu_has_native_bf16, resolve_device
from convcoach.train.lr_finder import auto_lr
from convcoach.train.setup import build_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["cnn", "vgg", "resnet"])
    parser.add_argument("--optimizer", default="nesterov")
    parser.add_argument("--subset", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    device = resolve_device("cpu")
    rows = []
    for model in args.models:
        base = TrainConfig(data="fashion-mnist", subset=args.subset, model=model, optimizer=args.optimizer, lr=0.1)
        parts = build_run(base, device)
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        chosen: dict[str, float | None] = {}
        for _ in range(args.rounds):
            for precision in ("fp32", "bf16"):
                config = dataclasses.replace(base, lr="auto", precision=precision)
                start = time.perf_counter()
                choice = auto_lr(
                    config,
                    parts.model,
                    parts.data.train.images,
                    parts.data.train.labels,
                    parts.normalizer,
                    parts.eval_loss_fn,
                    parts.loss_fn,
                    device,
                )
                times[precision].append(time.perf_counter() - start)
                chosen[precision] = choice.lr
        row = {
            "model": model,
            "optimizer": args.optimizer,
            "fp32_seconds": round(min(times["fp32"]), 2),
            "bf16_seconds": round(min(times["bf16"]), 2),
            "speedup": round(min(times["fp32"]) / min(times["bf16"]), 2),
            "fp32_lr": chosen["fp32"],
            "bf16_lr": chosen["bf16"],
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    result = {
        "host": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": cpu_has_native_bf16(),
        "threads": torch.get_num_threads(),
        "rows": rows,
    }
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
