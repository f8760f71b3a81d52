"""Transfer learning with 100 labelled images: Fashion-MNIST pretraining -> scikit-learn digits at 28x28.

Compares, on the same fixed held-out digits test split (359 images) over several seeds (each seed
draws its own 100-image stratified training set and validation split): training from scratch,
the linear probe, top-K and full fine-tuning, `auto` (its choice and reason), and kNN on raw
pixels and on the pretrained features (L1 and L2; k from 1,3,5 chosen on validation).

Run:  python benchmarks/transfer_digits.py                      # pretrains first (~3-4 min on 2 cores)
      python benchmarks/transfer_digits.py --pretrained runs/fmnist/best.pt --seeds 0,1,2
Writes benchmarks/results/transfer_digits.md (the table) and .json (every run)."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from convcoach import TrainConfig, Trainer, knn
from convcoach.data import SourceOptions, load_data
from convcoach.transfer import finetune, load_pretrained
from convcoach.transfer.features import embed, pixels

RESULTS = Path(__file__).parent / "results"


def pretrain(out: Path, subset: int, epochs: int) -> Path:
    if (out / "best.pt").is_file():
        print(f"reusing the pretrained network in {out}")
        return out
    print(f"pretraining the default resnet on Fashion-MNIST ({subset} images, {epochs} epochs) -> {out}")
    summary = Trainer(
        TrainConfig(data="fashion-mnist", subset=subset, epochs=epochs, out=str(out), quiet=True, report=False)
    ).fit()
    print(f"  Fashion-MNIST test accuracy {summary['test_accuracy'] * 100:.2f}% in {summary['train_seconds']:.0f}s")
    return out


def knn_rows(pretrained: Path, seed: int, subset: int) -> dict[str, float]:
    """Test accuracy of kNN on pixels and on the pretrained network's penultimate features."""
    data = load_data("digits", SourceOptions(image_size=28, seed=seed), 0.1, subset)
    network = load_pretrained(pretrained)
    rows = {}
    for name, represent in (
        ("pixels", pixels),
        ("features", lambda split: embed(network.model, split, network.normalizer)),
    ):
        train, val, test = ((represent(s), s.labels) for s in (data.train, data.val, data.test))
        for distance in ("l1", "l2"):
            result = knn.fit_and_test(train, val, test, [1, 3, 5], distance, data.num_classes)
            rows[f"kNN {distance.upper()} on {name}"] = result.test_accuracy
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pretrained", help="a Fashion-MNIST checkpoint or run dir (default: pretrain into --out/pretrain)"
    )
    parser.add_argument("--out", default="runs/transfer-digits")
    parser.add_argument("--pretrain-subset", type=int, default=20000)
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--subset", type=int, default=100, help="labelled digits training images")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--top", type=int, default=1, help="K of the top:K fine-tune")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is kind to a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    source = (
        Path(args.pretrained)
        if args.pretrained
        else pretrain(out / "pretrain", args.pretrain_subset, args.pretrain_epochs)
    )
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = {
        "from scratch": None,
        "linear probe (linear)": "linear",
        f"top-{args.top} fine-tune (top:{args.top})": f"top:{args.top}",
        "full fine-tune (full, backbone 0.1x LR)": "full",
        "auto": "auto",
    }
    table: dict[str, list[float]] = {name: [] for name in methods}
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    runs, reasons = [], {}
    start = time.perf_counter()
    for seed in seeds:
        for name, strategy in methods.items():
            config = TrainConfig(
                data="digits",
                image_size=28,
                subset=args.subset,
                seed=seed,
                epochs=args.epochs,
                batch_size=args.batch_size,
                augment=["none"],
                quiet=True,
                report=False,
                out=str(out / f"seed{seed}" / (strategy or "scratch").replace(":", "")),
                overwrite=True,  # a rerun of the benchmark replaces its runs
            )
            summary = finetune(config, source, strategy) if strategy else Trainer(config).fit()
            table[name].append(summary["test_accuracy"])
            seconds[name].append(summary["train_seconds"])
            if strategy == "auto":
                reasons[seed] = summary["transfer"]["reason"]
            runs.append(
                {
                    "seed": seed,
                    "method": name,
                    "test_accuracy": summary["test_accuracy"],
                    "train_seconds": summary["train_seconds"],
                    "transfer": summary.get("transfer"),
                }
            )
            print(
                f"seed {seed}  {name:<40s} test {summary['test_accuracy'] * 100:6.2f}%  "
                f"({summary['train_seconds']:.0f}s)",
                flush=True,
            )
        for name, accuracy in knn_rows(source, seed, args.subset).items():
            table.setdefault(name, []).append(accuracy)
            runs.append({"seed": seed, "method": name, "test_accuracy": accuracy})
            print(f"seed {seed}  {name:<40s} test {accuracy * 100:6.2f}%", flush=True)
    lines = [
        f"Digits (8x8 upsampled to 28x28), {args.subset} labelled training images, fixed 359-image test split; "
        f"seeds {args.seeds}; pretrained: {source}; {args.epochs} epochs, batch {args.batch_size}, "
        "default recipe otherwise.",
        "",
        "| method | test accuracy (mean ± std) | per seed |",
        "| --- | --- | --- |",
    ]
    for name, values in table.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        per_seed = ", ".join(f"{v * 100:.1f}" for v in values)
        lines.append(f"| {name} | {statistics.mean(values) * 100:.1f}% ± {spread * 100:.1f} | {per_seed} |")
    lines += ["", *(f"auto, seed {seed}: {reason}" for seed, reason in reasons.items())]
    lines.append(f"\ntotal {time.perf_counter() - start:.0f}s on {args.threads} thread(s)")
    text = "\n".join(lines)
    print("\n" + text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "transfer_digits.md").write_text(text + "\n")
    (RESULTS / "transfer_digits.json").write_text(
        json.dumps({"args": vars(args), "runs": runs}, indent=2, default=str) + "\n"
    )


if __name__ == "__main__":
    main()
