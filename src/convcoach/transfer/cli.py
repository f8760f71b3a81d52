"""The transfer package's subcommands: `finetune`, `features` and `knn` (registered here with @command)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .. import knn
from ..argtypes import at_least
from ..commands import add_config_flags, command, config_from_args
from ..config import TrainConfig
from ..errors import ConfigError
from ..run_dirs import make_output_dir, output_dir, owned_run_dir, prepare_out_file
from .features import PENULTIMATE, pixels, stage_features
from .pretrained import open_pretrained
from .strategy import STRATEGY_NAMES


def add_finetune_flags(parser: argparse.ArgumentParser) -> None:
    add_config_flags(parser)
    parser.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="SOURCE",
        help="imagenet:NAME (torchvision's weights: resnet18, resnet50, ...), hf-hub:REPO (timm), "
        "a convcoach best.pt/last.pt/run dir, or a state dict .pt with --model",
    )
    parser.add_argument(
        "--strategy",
        default="auto",
        help=f"{' | '.join(STRATEGY_NAMES)} (default auto: chosen from data size and similarity)",
    )
    parser.add_argument(
        "--head-lr-mult", type=float, default=1.0, help="the new head's LR as a multiple of --lr (default 1)"
    )
    parser.add_argument(
        "--backbone-lr-mult", type=float, default=0.1, help="pretrained layers' LR as a multiple of --lr (default 0.1)"
    )
    parser.add_argument(
        "--head-init", default="probe", help="probe (default: logistic regression on the frozen features) | random"
    )
    parser.add_argument(
        "--linear",
        default="cached",
        help="how the linear strategy trains its head: cached (default: one backbone pass, features cached on disk,"
        " logistic regression in seconds) | epochs (--epochs through the frozen network)",
    )
    parser.add_argument(
        "--views", type=at_least(0), default=0, help="augmented views of the training set to cache (cached linear)"
    )
    parser.add_argument(
        "--unfreeze-every", type=at_least(1), help="gradual unfreezing: thaw one more stage from the top every N epochs"
    )


@command(
    "finetune",
    "fine-tune a pretrained checkpoint on new data: --strategy linear | top:K | full | stages | auto",
    add_finetune_flags,
    order=70,
)
def run_finetune(args: argparse.Namespace) -> int:
    from ..errors import TrainingDiverged
    from .finetune import finetune

    config = config_from_args(args)
    with owned_run_dir(config.out, config.overwrite) as run:  # checked and owned before the weights load
        try:  # the run's files are written either way; divergence is exit 1, as for train
            summary = finetune(
                dataclasses.replace(config, out=str(run.path), overwrite=True),  # this process checked and owns it
                args.source,
                args.strategy,
                args.head_lr_mult,
                args.backbone_lr_mult,
                args.head_init,
                args.linear,
                args.views,
                args.unfreeze_every,
            )
        except TrainingDiverged as exc:
            summary = exc.summary
    transfer = summary["transfer"]
    for note in transfer["input"]:
        print(f"input: {note}")
    if "reason" in transfer:
        print(transfer["reason"])
    for probe in transfer.get("stage_probes", []):
        print(f"  stage {probe['stage']:<8s} linear probe val {probe['val_accuracy'] * 100:6.2f}%")
    if "head_probe" in transfer and transfer["head_probe"]["val_accuracy"] is not None:
        print(
            "head starts from a linear probe on the frozen features: "
            f"val {transfer['head_probe']['val_accuracy'] * 100:.2f}%"
        )
    print(
        f"strategy: {transfer['resolved']} (trainable stages: {', '.join(transfer['trainable_stages']) or 'head only'})"
    )
    print(f"BatchNorm: {transfer['norm_stats']}")
    if "cached_probe" in transfer:
        probe = transfer["cached_probe"]
        speed = f" ({probe['images_per_second']:.0f} images/s)" if probe["images_per_second"] else ""
        print(
            f"cached probe: {probe['images_forwarded']} images through the backbone in "
            f"{probe['forward_seconds']:.1f}s{speed}, {probe['cache_hits']} cache hit(s); "
            f"head fit on {probe['train_features'][0]} x {probe['train_features'][1]} features in "
            f"{probe['fit_seconds']:.1f}s"
        )
    if summary["status"] == "diverged":
        print(f"convcoach: training diverged: {summary['stop_message']}", file=sys.stderr)
        return 1
    print(
        f"test accuracy: {summary['test_accuracy'] * 100:.2f}%  "
        f"(run: {summary['run_dir']}, {summary['train_seconds']:.0f}s)"
    )
    return 0


def _data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="dataset name, npz:PATH or an image folder")
    parser.add_argument("--data-dir")
    parser.add_argument(
        "--image-size", type=at_least(1), help="resize resizable sources (default: the checkpoint's size)"
    )
    parser.add_argument("--subset", type=at_least(1), help="a stratified N-image training set")
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=TrainConfig.val_fraction,
        help=f"held out for validation, as in train (default {TrainConfig.val_fraction})",
    )
    parser.add_argument("--seed", type=at_least(0), default=0)
    parser.add_argument(
        "--model", help="architecture of a plain state dict checkpoint (with --depth/--width as trained)"
    )
    parser.add_argument("--depth", type=at_least(1))
    parser.add_argument("--width", type=at_least(1))
    parser.add_argument("--batch-size", type=at_least(1), default=512)


def _data_config(args: argparse.Namespace) -> TrainConfig:
    values = {
        key: getattr(args, key)
        for key in ("data", "data_dir", "image_size", "subset", "val_fraction", "seed", "model", "depth", "width")
    }
    return TrainConfig(**{key: value for key, value in values.items() if value is not None}).validate()


def add_features_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, help="convcoach checkpoint or run dir (or a state dict .pt with --model)"
    )
    _data_flags(parser)
    parser.add_argument(
        "--layer", default=PENULTIMATE, help="a stage (stem, stage1, .., fc1), penultimate (default) or logits"
    )
    parser.add_argument("--out", default="features.npz", help="output .npz (default features.npz)")


@command(
    "features",
    "write a checkpoint's embeddings (a stage, penultimate or logits) of every split to .npz",
    add_features_flags,
    order=80,
)
def run_features(args: argparse.Namespace) -> int:
    if Path(args.out).is_dir() or Path(args.out).suffix.lower() != ".npz":
        raise ConfigError(f"--out {args.out}: give a file name ending in .npz (numpy adds the suffix otherwise)")
    prepare_out_file(args.out)
    opened = open_pretrained(args.checkpoint, _data_config(args))
    data, model = opened.data, opened.pretrained.model
    arrays: dict[str, np.ndarray] = {"classes": np.array(data.classes), "layer": np.array(args.layer)}
    for name, split in (("train", data.train), ("val", data.val), ("test", data.test)):
        if split is None:
            continue
        arrays[f"{name}_features"] = stage_features(model, split, opened.normalizer, [args.layer], args.batch_size)[
            args.layer
        ].numpy()
        arrays[f"{name}_labels"] = split.labels.numpy()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    for note in opened.notes:
        print(f"input: {note}")
    shapes = ", ".join(f"{key[:-9]} {arrays[key].shape}" for key in arrays if key.endswith("_features"))
    print(f"wrote {out}: layer {args.layer}: {shapes}")
    return 0


def add_knn_flags(parser: argparse.ArgumentParser) -> None:
    _data_flags(parser)
    parser.add_argument(
        "--features", metavar="CHECKPOINT", help="classify a trained network's embeddings instead of raw pixels"
    )
    parser.add_argument("--layer", default=PENULTIMATE, help="embedding layer with --features (default penultimate)")
    parser.add_argument(
        "--k", default="1,3,5", help="k values to try; the best on the validation split is used (default 1,3,5)"
    )
    parser.add_argument("--distance", default="l2", help="l1 | l2 (default l2)")
    parser.add_argument("--out", help="output directory (default runs/knn-<timestamp>)")


@command(
    "knn",
    "k-nearest-neighbour classifier (L1/L2) on raw pixels or a checkpoint's features; k chosen on validation",
    add_knn_flags,
    order=90,
)
def run_knn(args: argparse.Namespace) -> int:
    from ..data import SourceOptions, Split, load_data
    from ..files import write_json

    ks = knn.parse_ks(args.k)
    knn.check_distance(args.distance)
    out = output_dir(args.out, "knn-")
    config = _data_config(args)
    start = time.perf_counter()
    if args.features:
        opened = open_pretrained(args.features, config)
        data = opened.data

        def represent(split: Split) -> torch.Tensor:
            return stage_features(opened.pretrained.model, split, opened.normalizer, [args.layer], args.batch_size)[
                args.layer
            ]

        representation = f"features: {args.layer} of {args.features}"
    else:
        data = load_data(config.data, SourceOptions.from_config(config), config.val_fraction, config.subset)
        represent, representation = pixels, "raw pixels"
    if data.streaming:
        raise ConfigError(f"{config.data}: kNN needs the images in memory (this set streams from disk)")
    splits = {
        name: (represent(split), split.labels)
        for name, split in (("train", data.train), ("val", data.val), ("test", data.test))
        if split is not None
    }
    with torch.no_grad():
        result = knn.fit_and_test(
            splits["train"], splits.get("val"), splits["test"], ks, args.distance, data.num_classes
        )
    summary = {
        "command": "knn",
        "data": {
            "name": data.name,
            "train": len(data.train),
            "val": len(data.val) if data.val else 0,
            "test": len(data.test),
        },
        "representation": representation,
        **result.summary(),
        "seconds": round(time.perf_counter() - start, 2),
    }
    out = make_output_dir(out, args.out)
    write_json(out / "summary.json", summary)
    for k, accuracy in result.val_accuracy.items():
        print(f"  k={k:<3d} val accuracy {accuracy * 100:6.2f}%")
    print(
        f"kNN ({args.distance}, {representation}), k={result.k}: test accuracy {result.test_accuracy * 100:.2f}%  "
        f"(summary: {out / 'summary.json'})"
    )
    return 0
