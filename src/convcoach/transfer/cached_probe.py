"""The `linear` strategy on cached features: one forward pass of the frozen backbone per split (and
per augmented view), a logistic-regression head fit on them, and a normal run directory (config.yaml,
best.pt, summary.json) that `eval`, `predict` and `export` read like any other."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from .. import __version__
from ..config import TrainConfig
from ..data import DataBundle, Normalizer
from ..errors import ConfigError
from ..files import save_yaml, write_json
from ..run_dirs import claim_run_dir
from ..train.checkpoint import save_checkpoint
from ..train.summary import data_summary
from .feature_cache import backbone_digest, cached_features
from .stage_probes import StageProbe, _fit_probe, set_head

log = logging.getLogger("convcoach")


@dataclass
class ProbeFeatures:
    """Each split's cached penultimate features (train: the plain view, then any augmented views)."""

    train: torch.Tensor
    train_labels: torch.Tensor
    val: torch.Tensor | None
    test: torch.Tensor | None
    val_labels: np.ndarray | None = None
    forward_seconds: float = 0.0  # backbone forward passes run now (0 when all came from the cache)
    images_forwarded: int = 0
    hits: int = 0
    paths: list[str] = field(default_factory=list)


def probe_features(
    model: nn.Module,
    data: DataBundle,
    normalizer: Normalizer,
    views: int = 0,
    augment: list[str] | None = None,
    seed: int = 0,
    batch_size: int = 64,
    precision: str = "auto",
) -> ProbeFeatures:
    """Features of train (+ `views` augmented copies), val and test, from the cache where present."""
    if views and not [a for a in augment or [] if a.strip().lower() != "none"]:
        raise ConfigError(f"--views {views} caches augmented views: give the augmentation (--augment OPS)")
    digest = backbone_digest(model)
    out = ProbeFeatures(torch.empty(0), torch.empty(0, dtype=torch.long), None, None)
    out.val_labels = data.val.labels.numpy() if data.val is not None else None

    def get(split: Any, view: int = 0) -> torch.Tensor:
        cached = cached_features(model, split, normalizer, view, augment, seed, batch_size, precision, digest)
        out.forward_seconds += cached.seconds
        out.images_forwarded += 0 if cached.hit else len(split)
        out.hits += cached.hit
        out.paths.append(str(cached.path))
        return cached.features

    train = [get(data.train, view) for view in range(views + 1)]
    out.train, out.train_labels = torch.cat(train), data.train.labels.repeat(views + 1)
    out.val = get(data.val) if data.val is not None else None
    out.test = get(data.test) if data.test is not None else None
    return out


def fit_head(features: ProbeFeatures, num_classes: int, seed: int = 0) -> StageProbe:
    """Multinomial logistic regression (L-BFGS) on the cached features."""
    val = features.val.numpy() if features.val is not None else None
    fit = _fit_probe(
        features.train.numpy(),
        features.train_labels.numpy(),
        val,
        None if val is None else features.val_labels,
        num_classes,
        seed,
    )
    return StageProbe("penultimate", features.train.shape[1], *fit)


def _accuracy(features: torch.Tensor, labels: torch.Tensor, probe: StageProbe) -> float:
    logits = features.double().numpy() @ probe.weight.T + probe.bias
    return float((np.argmax(logits, axis=1) == labels.numpy()).mean())


def cached_probe_run(
    model: nn.Module,
    head: nn.Linear,
    data: DataBundle,
    normalizer: Normalizer,
    spec: dict[str, Any],
    config: TrainConfig,
    transfer: dict[str, Any],
    views: int = 0,
) -> dict[str, Any]:
    """Fit `head` on cached features, write the run (config.yaml, best.pt, summary.json), return the summary."""
    start = time.perf_counter()
    run_lock = claim_run_dir(config.out, config.overwrite)
    run_dir = run_lock.path
    features = probe_features(
        model, data, normalizer, views, config.augment, config.seed, min(config.batch_size, 64), config.precision
    )
    fit_start = time.perf_counter()
    probe = fit_head(features, data.num_classes, config.seed)
    fit_seconds = time.perf_counter() - fit_start
    set_head(head, probe)
    test_accuracy = _accuracy(features.test, data.test.labels, probe)
    save_yaml(replace(config, overwrite=False), run_dir / "config.yaml")
    save_checkpoint(
        {
            "config": config.to_dict(),
            "model": spec,
            "classes": list(data.classes),
            "normalizer": normalizer.state_dict(),
            "model_state": model.state_dict(),
            "versions": {"convcoach": __version__, "torch": str(torch.__version__)},
        },
        run_dir / "best.pt",
    )
    seconds = time.perf_counter() - start
    transfer.update(
        cached_probe={
            "views": views,
            "train_features": list(features.train.shape),
            "cache_hits": features.hits,
            "cache_files": [Path(p).name for p in features.paths],
            "images_forwarded": features.images_forwarded,
            "forward_seconds": round(features.forward_seconds, 3),
            "images_per_second": round(features.images_forwarded / features.forward_seconds, 1)
            if features.forward_seconds
            else None,
            "fit_seconds": round(fit_seconds, 3),
        }
    )
    summary = {
        "command": "finetune",
        "status": "completed",
        "run_dir": str(run_dir),
        "data": data_summary(data),
        "model": spec,
        "parameters": sum(p.numel() for p in model.parameters()),
        "init": f"pretrained: {transfer['from']}; head: logistic regression on cached features",
        "epochs_run": 0,
        "train_accuracy": probe.train_accuracy,
        "val_accuracy": probe.val_accuracy,
        "test_accuracy": test_accuracy,
        "train_seconds": seconds,
        "transfer": transfer,
    }
    write_json(run_dir / "summary.json", summary)
    run_lock.release()
    log.info(
        "cached probe: %d images forwarded in %.1fs (%d cache hits), head fit in %.1fs",
        features.images_forwarded,
        features.forward_seconds,
        features.hits,
        fit_seconds,
    )
    return summary
