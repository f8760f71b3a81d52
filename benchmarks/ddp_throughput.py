"""Training throughput of 1 vs N DDP processes (gloo on CPU) for the default model on Fashion-MNIST.

Run: python benchmarks/ddp_throughput.py [--subset 20000] [--nproc 2]"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def run(nproc: int, subset: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"convcoach-ddp{nproc}-"))
    command = [
        sys.executable,
        "-m",
        "convcoach",
        "train",
        "--subset",
        str(subset),
        "--epochs",
        "2",
        "--quiet",
        "--out",
        str(out),
    ]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    subprocess.run(command, check=True, stdout=sys.stderr)  # the run's lines to stderr: stdout stays pure JSON
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    summary = json.loads((out / "summary.json").read_text())
    second_epoch = epochs[1]["time"] - epochs[0]["time"]  # the first epoch includes warm-up
    return {
        "nproc": nproc,
        "epoch_seconds": round(second_epoch, 2),
        "images_per_second": round(summary["data"]["train"] / second_epoch, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subset", type=int, default=20000)
    parser.add_argument("--nproc", type=int, default=2)
    args = parser.parse_args()
    results = [run(1, args.subset), run(args.nproc, args.subset)]
    print(
        json.dumps(
            {"runs": results, "speedup": round(results[1]["images_per_second"] / results[0]["images_per_second"], 3)},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
