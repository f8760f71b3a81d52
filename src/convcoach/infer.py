"""Use a trained checkpoint: rebuild its model, evaluate it on a split, predict image files."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .config import TrainConfig, from_dict
from .data import BatchLoader, Normalizer, SourceOptions, Split, load_data
from .data.imagefolder import load_image
from .errors import ConfigError
from .evaluate.tta import tta_model
from .models.fuse import fuse_bn
from .train.checkpoint import load_checkpoint, load_model_state
from .train.evaluate import Evaluation, evaluate
from .train.loop import build_model
from .train.losses import create_loss

log = logging.getLogger("convcoach")


@dataclass
class TrainedModel:
    """A model in eval mode with everything needed to feed it: normalizer, classes, input shape."""

    model: nn.Module
    normalizer: Normalizer
    classes: list[str]
    config: TrainConfig
    spec: dict[str, Any]
    path: Path

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return tuple(self.spec["in_shape"])


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Load a convcoach checkpoint (best.pt, last.pt or a run directory)."""
    payload = load_checkpoint(path)
    spec = payload["model"]
    if spec["name"] == "custom":
        raise ConfigError(f"{path}: trained with a user-supplied model; load its state dict into that model in Python")
    model = build_model(spec)
    if payload.get("fused_bn"):  # an export with BatchNorm folded (export.py): same tree, BNs are Identity
        model = fuse_bn(model, inplace=True)
    load_model_state(model, payload["model_state"], str(path))
    model.to(device).eval()
    config = from_dict(payload["config"], source=str(path))
    return TrainedModel(model, Normalizer.from_state(payload["normalizer"]), list(payload["classes"]), config, spec, Path(path))


def evaluate_trained(
    trained: TrainedModel, data: str | None = None, data_dir: str | None = None, split: str = "test", batch_size: int = 512,
    tta: str | None = None,
) -> Evaluation:
    """Accuracy and per-class accuracy of a trained model on a split of its data (or of `data`);
    `tta` ('flip', '10crop', 'multiscale', 'random:N') averages the softmax over test-time views."""
    return evaluate_split(trained, load_split(trained, data, data_dir, split), batch_size, tta)


def evaluate_split(trained: TrainedModel, split: Split, batch_size: int = 512, tta: str | None = None) -> Evaluation:
    """Loss, accuracy and the predicted probabilities of a trained model on a loaded split."""
    device = next(trained.model.parameters()).device
    loader = BatchLoader(split, batch_size, trained.normalizer, device)
    model = tta_model(trained, tta) if tta else trained.model
    return evaluate(model, loader, create_loss(trained.config.loss), len(trained.classes), "fp32", device)


def load_split(trained: TrainedModel, data: str | None = None, data_dir: str | None = None, split: str = "test") -> Split:
    """A split of the model's data (or of `data`), checked against the model's classes and input shape."""
    config = trained.config
    spec = data or config.data
    bundle = load_data(
        spec,
        SourceOptions(data_dir or config.data_dir, config.image_size or _square(trained.in_shape), config.strict, config.memory_limit_gb, config.seed),
        config.val_fraction,
    )
    if bundle.num_classes != len(trained.classes):
        raise ConfigError(f"{trained.path} was trained for {len(trained.classes)} classes but '{spec}' has {bundle.num_classes}")
    if list(bundle.classes) != list(trained.classes):
        differ = [f"{i}: {a} vs {b}" for i, (a, b) in enumerate(zip(trained.classes, bundle.classes)) if a != b]
        log.warning("'%s' names its classes differently from %s (class %s); scores assume class i is the same in both",
                    spec, trained.path, ", ".join(differ[:3]) + (f" and {len(differ) - 3} more" if len(differ) > 3 else ""))
    if tuple(bundle.shape) != trained.in_shape:
        raise ConfigError(f"{trained.path} expects images of shape {trained.in_shape} (C, H, W) but '{spec}' gives {tuple(bundle.shape)}")
    chosen = {"test": bundle.test, "val": bundle.val, "train": bundle.train}.get(split)
    if chosen is None:
        raise ConfigError(f"split must be test, val or train (and exist); got '{split}'")
    return chosen


def _square(shape: tuple[int, int, int]) -> int | None:
    return shape[1] if shape[1] == shape[2] else None


@torch.no_grad()
def predict_files(trained: TrainedModel, files: list[str | Path], top_k: int = 3) -> list[dict[str, Any]]:
    """Top-k classes and probabilities for each image file, read as the model's channels and size."""
    channels, height, width = trained.in_shape
    images = []
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"image not found: {path}")
        try:
            images.append(torch.from_numpy(load_image(path, channels, (height, width))))
        except (OSError, ValueError, SyntaxError) as exc:
            raise ConfigError(f"{path}: unreadable image ({exc})") from None
    device = next(trained.model.parameters()).device
    x = trained.normalizer(torch.stack(images).to(device))
    probs = trained.model(x).float().softmax(dim=1).cpu()
    k = min(top_k, probs.shape[1])
    top = probs.topk(k, dim=1)
    return [
        {"file": str(path), "prediction": trained.classes[int(idx[0])], "top": [{"class": trained.classes[int(i)], "probability": float(p)} for p, i in zip(values, idx)]}
        for path, values, idx in zip(files, top.values, top.indices)
    ]
