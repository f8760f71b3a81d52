"""A refactor must not change a run: train the default recipe briefly in fp32 with this tree and with a
reference commit (checked out in a temporary git worktree) and compare weights and metrics bit for bit.

    python benchmarks/bit_identity.py --ref 15d4254 [--subset 4000 --epochs 2]

Writes benchmarks/results/bit_identity.json."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = """
import json, sys, torch
torch.set_num_threads(1)
from convcoach import train
s = train(subset={subset}, epochs={epochs}, precision="fp32", out=sys.argv[1], quiet=True, checkpoint_every=7)
print(json.dumps({{k: s[k] for k in ("test_accuracy", "test_loss", "steps")}}))
"""


def run(src: Path, out: Path, subset: int, epochs: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    code = RUN.format(subset=subset, epochs=epochs)
    result = subprocess.run(
        [sys.executable, "-c", code, str(out)], env=env, capture_output=True, text=True, cwd=out.parent, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def compare(a: Path, b: Path) -> dict:
    import torch

    from convcoach.train.checkpoint import load_checkpoint

    same = {}
    for name in ("best.pt", "last.pt"):
        left, right = load_checkpoint(a / name)["model_state"], load_checkpoint(b / name)["model_state"]
        same[name] = left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)

    def rows(run_dir: Path) -> list[dict]:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]

    same["metrics.jsonl"] = rows(a) == rows(b)
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ref", required=True, help="the commit to compare with")
    parser.add_argument("--subset", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        worktree = tmp_path / "ref"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", str(worktree), args.ref],
            check=True,
            capture_output=True,
        )
        try:
            ref = run(worktree / "src", tmp_path / "run-ref", args.subset, args.epochs)
            new = run(ROOT / "src", tmp_path / "run-new", args.subset, args.epochs)
            identical = compare(tmp_path / "run-ref", tmp_path / "run-new")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)], check=False)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    record = {
        "ref": args.ref,
        "head": head.stdout.strip(),
        "subset": args.subset,
        "epochs": args.epochs,
        "precision": "fp32",
        "reference": ref,
        "this_tree": new,
        "bit_identical": identical,
    }
    print(json.dumps(record, indent=2))
    (ROOT / "benchmarks" / "results" / "bit_identity.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
