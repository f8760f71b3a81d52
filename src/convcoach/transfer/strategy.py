"""Transfer strategies by name (linear, top:K, full, stages, auto) and the lectures' table that `auto` follows.

                    very similar dataset          very different dataset
very little data    linear classifier on top      linear classifiers from different stages
quite a lot of data finetune a few layers         finetune a larger number of layers
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from .. import knn
from ..data import DataBundle, Normalizer, Split
from ..errors import ConfigError
from ..registry import Registry, parse_spec
from .features import PENULTIMATE, embed, pixels

# fewer training images per class than this is "very little data"
LITTLE_DATA_PER_CLASS = 100
STRATEGY_NAMES = ["linear", "top:K", "full", "stages", "auto"]

# name -> (args, stage names) -> the stages to unfreeze (the new head always trains)
TRAINABLE: Registry[Callable[[list[str], list[str]], list[str]]] = Registry("transfer strategy")


@TRAINABLE.register("linear")
def _linear(args: list[str], stages: list[str]) -> list[str]:
    return []


@TRAINABLE.register("top")
def _top(args: list[str], stages: list[str]) -> list[str]:
    """top:K unfreezes the last K stages (of stem, stage1.., fc1..)."""
    try:
        k = int(args[0]) if args else 1
    except ValueError:
        raise ConfigError(f"strategy top:K needs an integer K; got 'top:{args[0]}'") from None
    if not 1 <= k <= len(stages):
        raise ConfigError(
            f"strategy top:{k}: this network has {len(stages)} stages ({', '.join(stages)}); K must be 1..{len(stages)}"
        )
    return stages[-k:]


@TRAINABLE.register("full")
def _full(args: list[str], stages: list[str]) -> list[str]:
    return list(stages)


def check_strategy(spec: str) -> None:
    name, args = parse_spec(spec)
    if name not in ("stages", "auto") and name not in TRAINABLE:
        raise ConfigError(f"unknown strategy '{spec}'; known: {', '.join(STRATEGY_NAMES)}")
    args.allow(1 if name == "top" else 0)  # top:K (checked against the network's stages later); the others none
    args.check_all_read(spec, "strategy")


def trainable_stages(spec: str, stages: list[str]) -> list[str]:
    name, args = parse_spec(spec)
    trainable = TRAINABLE.get(name)(args, stages)
    args.check_all_read(spec, "strategy")
    return trainable


@dataclass
class Similarity:
    """1-NN validation accuracy on pretrained features against the same on raw pixels."""

    feature_accuracy: float
    pixel_accuracy: float

    @property
    def similar(self) -> bool:
        return self.feature_accuracy >= self.pixel_accuracy

    def describe(self) -> str:
        verdict = "similar dataset" if self.similar else "different dataset"
        sign = ">=" if self.similar else "<"
        return (
            f"1-NN on pretrained features {self.feature_accuracy * 100:.1f}% {sign} "
            f"on raw pixels {self.pixel_accuracy * 100:.1f}% (validation): {verdict}"
        )


def _keep(split: Split, limit: int, seed: int) -> torch.Tensor:
    if len(split) <= limit:
        return torch.arange(len(split))
    return torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:limit]


def measure_similarity(
    model: nn.Module,
    data: DataBundle,
    normalizer: Normalizer,
    seed: int = 0,
    limit: int = 5000,
    features: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> Similarity:
    """How well the pretrained representation separates the new classes, relative to pixels;
    `features`: the (train, val) penultimate features when already computed (the cached probe's)."""
    if data.val is None:
        raise ConfigError("strategy auto measures similarity on the validation split: set val_fraction > 0")
    keep_train, keep_val = _keep(data.train, limit, seed), _keep(data.val, limit, seed + 1)
    train = Split(data.train.images[keep_train], data.train.labels[keep_train])
    val = Split(data.val.images[keep_val], data.val.labels[keep_val])
    if features is None:
        features = embed(model, train, normalizer, PENULTIMATE), embed(model, val, normalizer, PENULTIMATE)
    else:
        features = features[0][keep_train], features[1][keep_val]
    accuracy = {}
    for name, (train_x, val_x) in (("features", features), ("pixels", (pixels(train), pixels(val)))):
        prediction = knn.predict(train_x, train.labels, val_x, [1], "l2", data.num_classes)[1]
        accuracy[name] = (prediction.cpu() == val.labels).float().mean().item()
    return Similarity(accuracy["features"], accuracy["pixels"])


@dataclass
class Choice:
    strategy: str
    reason: str


def choose_strategy(train_size: int, num_classes: int, similarity: Similarity, stages: list[str]) -> Choice:
    """The lectures' table: data size (per class) x dataset similarity -> strategy, with the reason."""
    per_class = train_size / max(num_classes, 1)
    little = per_class < LITTLE_DATA_PER_CLASS
    size = (
        f"{train_size} training images for {num_classes} classes "
        f"({per_class:.0f}/class, {'<' if little else '>='} {LITTLE_DATA_PER_CLASS}: "
        f"{'very little' if little else 'quite a lot of'} data)"
    )
    if little and similarity.similar:
        strategy, rule = "linear", "very little data + similar dataset: a linear classifier on the top layer"
    elif little:
        strategy, rule = (
            "stages",
            "very little data + very different dataset: linear classifiers on different stages, keep the best",
        )
    elif similarity.similar:
        strategy, rule = "top:1", "quite a lot of data + similar dataset: fine-tune a few layers (the last stage)"
    else:
        strategy, rule = (
            "full",
            "quite a lot of data + very different dataset: "
            "fine-tune a larger number of layers (all, at the backbone LR)",
        )
    if strategy == "stages" and not stages:
        strategy, rule = "linear", rule + "; this network has no stages, so the top layer"
    return Choice(strategy, f"auto chose '{strategy}': {size}; {similarity.describe()}; lecture table: {rule}")
