"""Ablation of the default recipe: the same run with one part removed or changed at a time.

Run: python benchmarks/ablation.py [--only NAME ...]  (each variant is a full default run, ~4 min here)
Prints a markdown table of test accuracy (with and without TTA) and wall time per variant."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# name -> the flags that remove or change one part of the default recipe
VARIANTS: dict[str, list[str]] = {
    "default": [],
    "no hflip (and so no flip TTA)": ["--augment", "none"],
    "no label smoothing": ["--label-smoothing", "0"],
    "no zero-init residual": ["--no-zero-init-residual"],
    "cosine instead of one-cycle": ["--schedule", "cosine"],
    "lr 0.4 instead of 0.8": ["--lr", "0.4"],
    "no weight decay": ["--weight-decay", "0"],
    "translate:2 added": ["--augment", "hflip,translate:2"],
    "plain momentum instead of Nesterov": ["--optimizer", "momentum", "--lr", "0.8"],
}


def run(flags: list[str]) -> dict:
    out = Path(tempfile.mkdtemp(prefix="convcoach-ablation-"))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "convcoach", "train", "--quiet", "--no-report", "--out", str(out), *flags], check=True, capture_output=True)
    summary = json.loads((out / "summary.json").read_text())
    return {"test": summary["test_accuracy"], "plain": summary["test_accuracy_without_tta"], "wall": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    args = parser.parse_args()
    rows = ["| variant | test accuracy | without TTA | wall time |", "| --- | --- | --- | --- |"]
    results = {}
    for name, flags in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        result = results[name] = run(flags)
        rows.append(f"| {name} | {result['test'] * 100:.2f}% | {result['plain'] * 100:.2f}% | {result['wall']:.0f} s |")
        print(rows[-1], flush=True)
    print("\n".join(rows))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
