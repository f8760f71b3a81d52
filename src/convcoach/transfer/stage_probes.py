"""Linear probes on each stage's pooled features; the network cut at the best stage (the `stages` strategy).

The lectures' advice for very little, very different data: "try linear classifier from different
stages" (Donahue et al. 2014, DeCAF; Razavian et al. 2014, CNN features off-the-shelf)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..data import DataBundle, Normalizer
from ..errors import ConfigError
from ..models.spec import build_model
from ..models.stages import Truncated, split_stages
from .features import PENULTIMATE, stage_features

log = logging.getLogger("convcoach")


@dataclass
class StageProbe:
    stage: str
    dim: int
    train_accuracy: float
    val_accuracy: float | None  # None without a validation split
    weight: np.ndarray  # (classes, dim): the probe folded back to raw features, to start the head from
    bias: np.ndarray

    def summary(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "dim": self.dim,
            "train_accuracy": self.train_accuracy,
            "val_accuracy": self.val_accuracy,
        }


def _fit_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray | None,
    val_y: np.ndarray | None,
    num_classes: int,
    seed: int,
) -> tuple[float, float | None, np.ndarray, np.ndarray]:
    """Multinomial logistic regression on standardized features (sklearn, L-BFGS)."""
    from sklearn.linear_model import LogisticRegression

    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    clf = LogisticRegression(C=1.0, max_iter=1000, random_state=seed)
    clf.fit((train_x - mean) / std, train_y)
    train_acc = float(clf.score((train_x - mean) / std, train_y))
    val_acc = float(clf.score((val_x - mean) / std, val_y)) if val_x is not None else None
    coef, intercept = clf.coef_, clf.intercept_
    if coef.shape[0] == 1:  # sklearn's binary form: one row for classes_[1]
        coef, intercept = np.concatenate([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    # w.(x - m)/s + b = (w/s).x + (b - w.(m/s)); classes absent from training get a very low score
    weight = np.zeros((num_classes, train_x.shape[1]))
    bias = np.full(num_classes, float(intercept.min()) - 10.0)
    weight[clf.classes_] = coef / std
    bias[clf.classes_] = intercept - (coef / std) @ mean
    return train_acc, val_acc, weight, bias


def probe_stages(model: nn.Module, data: DataBundle, normalizer: Normalizer, seed: int = 0) -> list[StageProbe]:
    """Validation accuracy of a linear classifier on every stage's globally pooled features."""
    if data.val is None:
        raise ConfigError("the stages strategy compares stages on the validation split: set val_fraction > 0")
    names = split_stages(model).names
    if not names:
        raise ConfigError("this network has no stages to probe (a linear model); use --strategy linear or full")
    return probe_layers(model, data, normalizer, names, seed)


def probe_head(model: nn.Module, data: DataBundle, normalizer: Normalizer, seed: int = 0) -> StageProbe:
    """A linear probe on the head's input: the new head's starting point (LP-FT, Kumar et al. 2022:
    fine-tuning from a probed head distorts the pretrained features less than from a random one)."""
    return probe_layers(model, data, normalizer, [PENULTIMATE], seed)[0]


def probe_layers(
    model: nn.Module, data: DataBundle, normalizer: Normalizer, layers: list[str], seed: int = 0, max_train: int = 10000
) -> list[StageProbe]:
    """Logistic regression on each layer's pooled training features, scored on validation when there is one."""
    if data.streaming:
        raise ConfigError(
            "linear probes need the training images in memory (this set streams from disk); use --head-init random"
        )
    train = data.train
    if len(train) > max_train:  # the probe's cost grows with N; a seeded sample ranks stages as well
        keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:max_train]
        train = type(train)(train.images[keep], train.labels[keep])
    train_feats = stage_features(model, train, normalizer, layers)
    val_feats = stage_features(model, data.val, normalizer, layers) if data.val is not None else {}
    val_y = data.val.labels.numpy() if data.val is not None else None
    probes = []
    for name in layers:
        val_x = val_feats[name].numpy() if val_feats else None
        fit = _fit_probe(train_feats[name].numpy(), train.labels.numpy(), val_x, val_y, data.num_classes, seed)
        probes.append(StageProbe(name, train_feats[name].shape[1], *fit))
        val = f"{fit[1] * 100:.1f}%" if fit[1] is not None else "n/a"
        log.info("probe on %-11s %5d features: train %.1f%%, val %s", name, probes[-1].dim, fit[0] * 100, val)
    return probes


@torch.no_grad()
def set_head(head: nn.Linear, probe: StageProbe) -> None:
    """Copy a probe's weights into a Linear head."""
    head.weight.copy_(torch.as_tensor(probe.weight, dtype=torch.float32))
    if head.bias is not None:
        head.bias.copy_(torch.as_tensor(probe.bias, dtype=torch.float32))


def best_probe(probes: list[StageProbe]) -> StageProbe:
    """Highest validation accuracy; a tie goes to the earlier (smaller) stage."""
    return max(reversed(probes), key=lambda probe: probe.val_accuracy)


@torch.no_grad()
def cut_at(
    model: nn.Module, spec: dict[str, Any], probe: StageProbe, num_classes: int
) -> tuple[nn.Module, dict[str, Any]]:
    """The pretrained network cut after `probe.stage` with the probe as its head, and its rebuild spec."""
    new_spec = {
        "name": "truncated",
        "in_shape": list(spec["in_shape"]),
        "num_classes": num_classes,
        "options": {"base": spec["name"], "base_options": dict(spec["options"]), "stage": probe.stage},
    }
    cut = build_model(new_spec)
    assert isinstance(cut, Truncated)
    source = split_stages(model)
    for name, stage in cut.stages.items():
        stage.load_state_dict(nn.Sequential(*source.stage_modules(name)).state_dict())
    set_head(cut.fc, probe)
    return cut.to(next(model.parameters()).device), new_spec
