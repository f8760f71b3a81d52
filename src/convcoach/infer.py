"""Use a trained checkpoint: rebuild its model, evaluate it on a split, predict image files (many: predict.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from .config import from_dict
from .data import BatchLoader, Normalizer, Split
from .data.imagefolder import read_image
from .errors import ConfigError
from .evaluate.passes import Evaluation, evaluate
from .evaluate.trained import TrainedModel, load_split
from .evaluate.tta import tta_model
from .models.fuse import fuse_bn
from .models.spec import build_model
from .predict import expand_paths, predict_paths, write_predictions
from .train.checkpoint import load_checkpoint, load_model_state
from .train.losses import create_loss

__all__ = [
    "TrainedModel",
    "evaluate_split",
    "evaluate_trained",
    "expand_paths",
    "load_split",
    "load_trained",
    "predict_files",
    "predict_paths",
    "write_predictions",
]

log = logging.getLogger("convcoach")


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
    return TrainedModel(
        model, Normalizer.from_state(payload["normalizer"]), list(payload["classes"]), config, spec, Path(path)
    )


def evaluate_trained(
    trained: TrainedModel,
    data: str | None = None,
    data_dir: str | None = None,
    split: str = "test",
    batch_size: int = 512,
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


@torch.no_grad()
def predict_files(trained: TrainedModel, files: list[str | Path], top_k: int = 3) -> list[dict[str, Any]]:
    """Top-k classes and probabilities for each image file, read as the model's channels and size."""
    channels, height, width = trained.in_shape
    images = []
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"image not found: {path}")
        images.append(torch.from_numpy(read_image(path, channels, (height, width))))
    device = next(trained.model.parameters()).device
    x = trained.normalizer(torch.stack(images).to(device))
    probs = trained.model(x).float().softmax(dim=1).cpu()
    k = min(top_k, probs.shape[1])
    top = probs.topk(k, dim=1)
    return [
        {
            "file": str(path),
            "prediction": trained.classes[int(idx[0])],
            "top": [{"class": trained.classes[int(i)], "probability": float(p)} for p, i in zip(values, idx)],
        }
        for path, values, idx in zip(files, top.values, top.indices)
    ]
