"""How far averaging finished runs gets: each run's test accuracy, every pair's and all runs' softmax
average, and the confusions the average still makes (issue 25, part 5: is ~95.1% the recipe's
ceiling or one net's?).

Each run is evaluated once (best.pt, flip TTA as the runs report it) on its test split; the ensembles
average the TTA'd probabilities. All runs must share the dataset and classes.

    python benchmarks/ensemble_ceiling.py RUN_DIR [RUN_DIR ...] [--tta flip] [--out FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import Counter
from pathlib import Path

import torch
from utilization import host

from convcoach import TrainConfig
from convcoach.infer import evaluate_trained, load_trained


def accuracy(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    return round(float((probabilities.argmax(1) == labels).float().mean()), 4)


def describe(path: Path, config: TrainConfig) -> str:
    """The run's distinguishing options (its config and summary): width, stem, augmentation, seed, epochs."""
    summary = json.loads((path / "summary.json").read_text()) if (path / "summary.json").is_file() else {}
    stem = config.model_options.get("stem", "pool_early")
    return (
        f"depth {config.depth} width {config.width} stem {stem}, {','.join(config.augment)}, "
        f"seed {config.seed}, {summary.get('epochs_run', '?')} epochs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--tta", default="flip")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    probabilities, labels, classes, runs = {}, None, None, []
    for run in args.runs:
        trained = load_trained(run)
        result = evaluate_trained(trained, tta=args.tta)
        name = str(run)
        probabilities[name] = result.probabilities.float()
        labels, classes = result.labels, trained.classes
        runs.append({"run": name, "what": describe(run, trained.config), "test_accuracy": round(result.accuracy, 4)})
    pairs = [
        {"runs": [a, b], "test_accuracy": accuracy(probabilities[a] + probabilities[b], labels)}
        for a, b in itertools.combinations(probabilities, 2)
    ]
    everything = sum(probabilities.values())
    wrong = everything.argmax(1) != labels
    confusions = Counter(zip(labels[wrong].tolist(), everything.argmax(1)[wrong].tolist()))
    best_single = max(run["test_accuracy"] for run in runs)
    report = {
        "host": host(),
        "tta": args.tta,
        "runs": runs,
        "pairs": pairs,
        "best_single": best_single,
        "best_pair": max((pair["test_accuracy"] for pair in pairs), default=None),
        "all_runs": accuracy(everything, labels),
        "errors_of_all_runs": int(wrong.sum()),
        "top_confusions": [
            {"true": classes[t], "predicted": classes[p], "count": n} for (t, p), n in confusions.most_common(8)
        ],
    }
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
