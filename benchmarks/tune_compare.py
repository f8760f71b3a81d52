"""Random vs TPE search at a fixed trial budget, and the compute saved by early abort and median pruning.

Run: python benchmarks/tune_compare.py [--subset 2000] [--epochs 2] [--trials 20] [--seeds 3]
Per seed (a seed fixes the validation split, the initialization and the samplers' draws) it runs
random search, TPE, and random search with median pruning over the same space on Fashion-MNIST
and prints JSON: best validation accuracy after N trials (mean over seeds), the best-so-far curve,
and training steps run vs planned (what the 3x-loss explosion abort and the pruner saved)."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from convcoach import TrainConfig
from convcoach.tune import TuneOptions, parse_space, tune
from convcoach.tune.trials import load_trial_data

SPACE = "lr=1e-4..3:log, weight_decay=1e-6..1e-2:log, dropout=0..0.5, optimizer=[nesterov,adam]"


def best_so_far(records: list, checkpoints: list[int]) -> dict[int, float | None]:
    """Best completed validation accuracy after the first k trials, for each k."""
    ordered = sorted(records, key=lambda r: r.number)
    result = {}
    for k in checkpoints:
        values = [r.val_acc for r in ordered[:k] if r.outcome == "completed" and r.val_acc is not None]
        result[k] = max(values) if values else None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--subset", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--space", default=SPACE)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--val-fraction", type=float, default=0.05, help="of the full training set: 3000 Fashion-MNIST images"
    )
    parser.add_argument("--out", default=None, help="where the tune directories go (default: a temp dir)")
    args = parser.parse_args()

    root = Path(args.out or tempfile.mkdtemp(prefix="convcoach-tune-compare-"))
    space = parse_space(args.space)
    runs = {"random": ("random", "none"), "tpe": ("tpe", "none"), "random+median": ("random", "median")}
    checkpoints = sorted({k for k in (5, 10, args.trials // 2, args.trials) if 0 < k <= args.trials})
    results: dict[str, list[dict]] = {name: [] for name in runs}
    for seed in range(args.seeds):
        base = TrainConfig(
            data=args.data,
            subset=args.subset,
            model=args.model,
            depth=2,
            width=args.width,
            epochs=args.epochs,
            batch_size=args.batch_size,
            val_fraction=args.val_fraction,
            augment=["none"],
            seed=seed,
            quiet=True,
        )
        data = load_trial_data(base)  # once per seed, shared by the three searches
        for name, (sampler, prune) in runs.items():
            out = root / f"seed{seed}-{name}"
            config = TrainConfig(**{**base.to_dict(), "out": str(out)})
            start = time.perf_counter()
            result = tune(
                config, space, TuneOptions(sampler=sampler, trials=args.trials, prune=prune), data=data, echo=None
            )
            compute = result.summary["compute"]
            results[name].append(
                {
                    "seed": seed,
                    "best_val_acc": result.best.val_acc if result.best else None,
                    "best_so_far": best_so_far(result.records, checkpoints),
                    "outcomes": result.summary["outcomes"],
                    "steps": compute["steps"],
                    "planned_steps": compute["planned_steps"],
                    "saved_by_explosion_abort": compute["saved_steps"]["diverged"],
                    "saved_by_pruning": compute["saved_steps"]["pruned"],
                    "wall_seconds": round(time.perf_counter() - start, 1),
                }
            )
            print(
                f"seed {seed} {name:>14s}: best val_acc {results[name][-1]['best_val_acc']}, "
                f"steps {compute['steps']}/{compute['planned_steps']}",
                file=sys.stderr,
                flush=True,
            )

    def mean(values: list) -> float | None:
        values = [v for v in values if v is not None]
        return round(statistics.mean(values), 4) if values else None

    summary = {
        "data": args.data,
        "subset": args.subset,
        "epochs_per_trial": args.epochs,
        "trials": args.trials,
        "seeds": args.seeds,
        "space": args.space,
        "model": f"{args.model} depth 2 width {args.width}",
        "batch_size": args.batch_size,
        "val_fraction": args.val_fraction,
        "threads": torch.get_num_threads(),
        "out": str(root),
        "by_search": {
            name: {
                "mean_best_val_acc": mean([r["best_val_acc"] for r in rows]),
                "mean_best_so_far": {k: mean([r["best_so_far"][k] for r in rows]) for k in checkpoints},
                "steps_run_fraction": round(
                    sum(r["steps"] for r in rows) / max(1, sum(r["planned_steps"] for r in rows)), 3
                ),
                "saved_steps_by_explosion_abort": sum(r["saved_by_explosion_abort"] for r in rows),
                "saved_steps_by_pruning": sum(r["saved_by_pruning"] for r in rows),
                "mean_wall_seconds": mean([r["wall_seconds"] for r in rows]),
                "runs": rows,
            }
            for name, rows in results.items()
        },
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
