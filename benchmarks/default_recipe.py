"""Default recipe: `convcoach train` with no flags on Fashion-MNIST; wall time and test accuracy.

Run: python benchmarks/default_recipe.py [extra convcoach train flags...]
Extra flags make the ablation runs (e.g. --augment none)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    out = Path(tempfile.mkdtemp(prefix="convcoach-recipe-"))
    command = [sys.executable, "-m", "convcoach", "train", "--quiet", "--out", str(out), *sys.argv[1:]]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=sys.stderr)  # the run's lines to stderr: stdout stays pure JSON
    wall = time.perf_counter() - start
    summary = json.loads((out / "summary.json").read_text())
    env = json.loads((out / "env.json").read_text())
    print(
        json.dumps(
            {
                "flags": sys.argv[1:],
                "test_accuracy": round(summary["test_accuracy"], 4),
                "test_accuracy_without_tta": round(summary.get("test_accuracy_without_tta") or 0.0, 4),
                "wall_seconds": round(wall, 1),
                "train_seconds": summary["train_seconds"],
                "epochs": summary["epochs_run"],
                "time_budget": summary.get("time_budget"),
                "precision": env["precision"],
                "precision_reason": env["precision_reason"],
                "threads": env.get("threads"),
                "planned_epochs": env.get("planned_epochs"),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
