"""Ablation of the default recipe: the same run with one part removed or changed at a time.

Run: python benchmarks/ablation.py [--only NAME ...] [--jobs 2]  (each variant is a full default run)
--jobs N runs N variants at once, each on cores/N threads: same accuracies, ~N x longer walls each.
Prints a markdown table of test accuracy (with and without TTA) and wall time per variant."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# name -> the flags that remove, change or add one part of the default recipe
VARIANTS: dict[str, list[str]] = {
    "default": [],
    "fp32 instead of bf16 autocast": ["--precision", "fp32"],
    "Nesterov SGD instead of Muon on the conv filters": ["--optimizer", "nesterov"],
    "no hflip (and so no flip TTA)": ["--augment", "none"],
    "10 epochs (the previous default)": ["--epochs", "10"],
    "no label smoothing": ["--label-smoothing", "0"],
    "no zero-init residual": ["--no-zero-init-residual"],
    "no weight decay": ["--weight-decay", "0"],
    "stem conv-norm-act-pool (old) instead of conv-pool-norm-act": ["--model-options", "stem=pool"],
    # additions that were tried and are not in the default
    "+ weight averaging (ema 0.998)": ["--ema", "0.998"],
    "+ progressive resizing 16 px -> 28 over half of 12 epochs": ["--progressive-resize", "16:0.5", "--epochs", "12"],
}


def run(flags: list[str], threads: int | None = None) -> dict:
    out = Path(tempfile.mkdtemp(prefix="convcoach-ablation-"))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads)) if threads else None
    start = time.perf_counter()
    command = [sys.executable, "-m", "convcoach", "train", "--quiet", "--no-report", "--out", str(out), *flags]
    subprocess.run(command, check=True, capture_output=True, env=env)
    summary = json.loads((out / "summary.json").read_text())
    plain = summary.get("test_accuracy_without_tta") or summary["test_accuracy"]
    precision = json.loads((out / "env.json").read_text())["precision"]
    return {
        "flags": flags,
        "test": summary["test_accuracy"],
        "plain": plain,
        "wall": time.perf_counter() - start,
        "epochs": summary["epochs_run"],
        "precision": precision,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="variants run at once, each on cores/jobs threads")
    parser.add_argument(
        "--base",
        default="",
        help="flags put before every variant's, e.g. '--precision bf16' so that auto's "
        "step timing on a shared host cannot pick differently per variant",
    )
    args = parser.parse_args()
    names = [name for name in VARIANTS if not args.only or name in args.only]
    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None
    rows = ["| variant | test accuracy | without TTA | wall time |", "| --- | --- | --- | --- |"]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = dict(zip(names, pool.map(lambda name: run(args.base.split() + VARIANTS[name], threads), names)))
    for name, result in results.items():
        rows.append(f"| {name} | {result['test'] * 100:.2f}% | {result['plain'] * 100:.2f}% | {result['wall']:.0f} s |")
    print("\n".join(rows))
    print(json.dumps({"jobs": args.jobs, "results": results}, indent=2))


if __name__ == "__main__":
    main()
