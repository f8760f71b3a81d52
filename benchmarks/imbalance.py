"""Imbalanced data: Fashion-MNIST with one class at 5% of the others' count in the training split (the test
split untouched), trained three ways with the same recipe: no compensation, --class-weights balanced,
--sampler balanced. Reports the minority class's test recall and the macro-F1 of the final weights.

Run:  python benchmarks/imbalance.py                 # ~4 minutes on 2 shared cores (1 thread, one run at a time)
      python benchmarks/imbalance.py --per-class 300 --epochs 6 --seeds 0
Writes benchmarks/results/imbalance.json. Accuracy figures only: timings on a shared machine mean nothing."""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import subprocess
import tempfile
from pathlib import Path

import torch

from convcoach import TrainConfig, Trainer
from convcoach.data import DataBundle, SourceOptions, Split, load_data
from convcoach.evaluate.metrics import confusion_matrix, per_class_scores
from convcoach.evaluate.passes import evaluate
from convcoach.train.losses import create_loss

RESULTS = Path(__file__).parent / "results"
SETTINGS = {"none": {}, "class_weights": {"class_weights": ["balanced"]}, "sampler": {"sampler": "balanced"}}


def imbalanced(data: DataBundle, per_class: int, minority: int, share: float, seed: int) -> DataBundle:
    """`per_class` training images of each class, `share` of that for `minority`; the test split as it is."""
    generator = torch.Generator().manual_seed(seed)
    keep = []
    for label in range(data.num_classes):
        members = torch.nonzero(data.train.labels == label).flatten()
        count = round(per_class * share) if label == minority else per_class
        keep.append(members[torch.randperm(len(members), generator=generator)[:count]])
    index = torch.cat(keep)
    train = Split(data.train.images[index], data.train.labels[index])
    return dataclasses.replace(data, train=train, val=None)


def recipe(args: argparse.Namespace, out: Path, seed: int, **setting) -> TrainConfig:
    """The one small recipe every setting shares: a narrow ResNet, a few epochs, no validation split
    (the final weights are scored), one thread."""
    return TrainConfig(
        data="fashion-mnist",
        data_dir=args.data_dir,
        model="resnet",
        width=args.width,
        epochs=args.epochs,
        batch_size=128,
        val_fraction=0.0,
        seed=seed,
        threads=1,
        precision="fp32",
        tta="none",
        monitors=False,
        report=False,
        quiet=True,
        out=str(out),
        overwrite=True,
        **setting,
    )


def score(trainer: Trainer, minority: int) -> dict[str, float]:
    """Minority recall, macro-F1 and accuracy of the final weights on the whole test split."""
    loader = trainer.loader(trainer.data.test)
    result = evaluate(trainer.model, loader, create_loss("cross_entropy"), trainer.data.num_classes, "fp32")
    scores = per_class_scores(confusion_matrix(result.predictions, result.labels, trainer.data.num_classes))
    return {
        "minority_recall": round(scores["recall"][minority], 4),
        "macro_f1": round(statistics.fmean(scores["f1"]), 4),
        "accuracy": round(result.accuracy, 4),
        "minority_precision": round(scores["precision"][minority], 4),
    }


def host() -> dict[str, str]:
    flags = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("Model name")), "")
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    present = next((line.split() for line in flags.splitlines() if line.startswith("Flags")), [])
    return {
        "cpu": model,
        "lscpu_flags": " ".join(flag for flag in wanted if flag in present),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--per-class", type=int, default=400, help="training images of each common class")
    parser.add_argument("--minority", type=int, default=0, help="the rare class (0: T-shirt/top)")
    parser.add_argument("--share", type=float, default=0.05, help="its count as a share of the others'")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", help="where the run directories go (default: a temporary folder)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out or tempfile.mkdtemp(prefix="convcoach-imbalance-"))
    full = load_data("fashion-mnist", SourceOptions(data_dir=args.data_dir), 0.0)
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        data = imbalanced(full, args.per_class, args.minority, args.share, seed)
        for name, setting in SETTINGS.items():  # one after another: no two runs share the cores
            trainer = Trainer(recipe(args, out / f"{name}-{seed}", seed, **setting), data=data)
            trainer.fit(test=False)
            runs.append({"setting": name, "seed": seed, **score(trainer, args.minority)})
            print(json.dumps(runs[-1]), flush=True)
    counts = torch.bincount(data.train.labels, minlength=full.num_classes).tolist()
    mean = {
        name: {
            key: round(statistics.fmean(r[key] for r in runs if r["setting"] == name), 4)
            for key in ("minority_recall", "macro_f1", "accuracy", "minority_precision")
        }
        for name in SETTINGS
    }
    result = {
        "command": "python benchmarks/imbalance.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("out", "data_dir")),
        "minority": full.classes[args.minority],
        "train_counts": counts,
        "test_images": len(full.test),
        "recipe": f"resnet width {args.width}, {args.epochs} epochs, batch 128, fp32, 1 thread, no validation "
        "split, final weights scored",
        "mean": mean,
        "runs": runs,
        "host": host(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "imbalance.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(mean, indent=2))


if __name__ == "__main__":
    main()
