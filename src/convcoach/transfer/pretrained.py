"""Load a pretrained network for transfer (a convcoach checkpoint, or a plain state dict plus a model name)
and adapt it to new data."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..config import TrainConfig
from ..data import DataBundle, Normalizer
from ..errors import ConfigError
from ..models.imagenet import imagenet_architecture
from ..models.spec import build_model, model_spec
from ..models.weights import LoadedWeights, is_weights_source, load_backbone, resolve_weights
from ..train.checkpoint import checked, is_checkpoint, load_model_state, read_payload
from ..train.setup import load_run_data
from .channels import check_image_size, convert_input_channels, convert_normalizer

log = logging.getLogger("convcoach")


@dataclass
class Pretrained:
    """The network with its rebuild spec; `normalizer` and `classes` are None for a plain state dict."""

    model: nn.Module
    spec: dict[str, Any]
    normalizer: Normalizer | None
    classes: list[str] | None
    path: Path

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return tuple(self.spec["in_shape"])


def _read(path: Path) -> Any:
    if path.is_dir():
        path = path / "best.pt" if (path / "best.pt").is_file() else path / "last.pt"
    if not path.is_file():
        raise ConfigError(f"pretrained checkpoint not found: {path}")
    payload = read_payload(path)
    return checked(payload, path) if is_checkpoint(payload) else payload  # else a plain state dict


def read_pretrained(path: str | Path) -> Any:
    """The raw payload: a convcoach checkpoint or a state dict."""
    return _read(Path(path))


def checkpoint_in_shape(payload: Any) -> tuple[int, int, int] | None:
    """(C, H, W) the network was trained on, when the payload is a convcoach checkpoint."""
    if is_checkpoint(payload):
        return tuple(payload["model"]["in_shape"])
    return None


def load_pretrained(
    path: str | Path, config: TrainConfig | None = None, image_shape: tuple[int, int] | None = None, payload: Any = None
) -> Pretrained:
    """A convcoach checkpoint (file or run directory) as trained; a plain state dict is built from
    `config.model` (+ depth/width/...) with the channel count and class count its weights imply."""
    path = Path(path)
    payload = payload if payload is not None else _read(path)
    if is_checkpoint(payload):
        spec = payload["model"]
        if spec["name"] == "custom":
            raise ConfigError(
                f"{path}: trained with a user-supplied model; save its state_dict and pass it with --model NAME"
            )
        model = build_model(spec)
        load_model_state(model, payload["model_state"], str(path))
        return Pretrained(model, spec, Normalizer.from_state(payload["normalizer"]), list(payload["classes"]), path)
    if isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict):
        payload = payload["state_dict"]
    if not (isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values())):
        raise ConfigError(f"{path}: neither a convcoach checkpoint nor a plain state dict of tensors")
    if config is None or image_shape is None:
        raise ConfigError(
            f"{path} is a plain state dict: "
            "give the model name (--model NAME, plus --depth/--width/--model-options as trained)"
        )
    state = {_strip(key): value for key, value in payload.items()}
    weights = [value for key, value in state.items() if key.endswith("weight") and value.dim() in (2, 4)]
    if not weights:
        raise ConfigError(f"{path}: the state dict has no conv or linear weights")
    first, last = weights[0], weights[-1]
    channels = first.shape[1] if first.dim() == 4 else None
    if channels is None:  # a flattening model: the first Linear sees C*H*W inputs
        pixels = image_shape[0] * image_shape[1]
        if first.shape[1] % pixels:
            raise ConfigError(
                f"{path}: the first layer takes {first.shape[1]} inputs, "
                f"not a multiple of {image_shape[0]}x{image_shape[1]} pixels"
            )
        channels = first.shape[1] // pixels
    spec = model_spec(config, (int(channels), *image_shape), int(last.shape[0]))
    model = build_model(spec)
    try:
        load_model_state(model, state, str(path))
    except ConfigError as exc:
        detail = str(exc).partition("(")[2].rstrip(")")
        raise ConfigError(
            f"{path}: a plain state dict read as --model {config.model}: give the architecture it was trained with"
            f" (--model, --depth, --width, --model-options); {detail}"
        ) from None
    log.info(
        "%s: plain state dict loaded as %s (%d input channels, %d classes)", path, config.model, channels, last.shape[0]
    )
    return Pretrained(model, spec, None, None, path)


def _strip(key: str) -> str:
    """Drop wrappers' prefixes: DDP's 'module.' and torch.compile's '_orig_mod.'."""
    for prefix in ("module.", "_orig_mod."):
        while key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def adapt_input(pretrained: Pretrained, data: DataBundle) -> tuple[dict[str, Any], Normalizer | None, list[str]]:
    """Adapt the network to the data's channels and size; returns its spec for the data, the
    normalizer for the data (None: fit a new one) and what was done."""
    notes = []
    channels, height, width = data.shape
    message = convert_input_channels(pretrained.model, channels, (height, width))
    if message:
        notes.append(message)
    what = f"'{pretrained.spec['name']}' from {pretrained.path}"
    check_image_size(pretrained.model, (channels, *pretrained.in_shape[1:]), data.shape, what)
    spec = {**pretrained.spec, "in_shape": list(data.shape)}
    rebuilt = build_model({**spec, "num_classes": pretrained.spec["num_classes"]}).state_dict()
    own = pretrained.model.state_dict()
    if rebuilt.keys() != own.keys() or any(rebuilt[key].shape != own[key].shape for key in own):
        size = f"{pretrained.in_shape[1]}x{pretrained.in_shape[2]}"
        raise ConfigError(
            f"{what} has a different layout at {height}x{width}: "
            f"resize the data to {size} with --image-size {pretrained.in_shape[1]}"
        )
    if tuple(pretrained.in_shape[1:]) != (height, width):
        notes.append(
            f"images are {height}x{width}, "
            f"the network was trained on {pretrained.in_shape[1]}x{pretrained.in_shape[2]} "
            "(adaptive pooling takes both)"
        )
    normalizer = convert_normalizer(pretrained.normalizer, channels) if pretrained.normalizer else None
    notes.append(
        "inputs normalized with the pretrained network's statistics"
        if normalizer
        else "no pretrained statistics: normalizer fit on the new training split"
    )
    return spec, normalizer, notes


@dataclass
class Opened:
    """A pretrained network adapted to a dataset, with the config that loaded both."""

    pretrained: Pretrained
    data: DataBundle
    spec: dict[str, Any]  # the network's spec at the data's input shape (still the old class count)
    normalizer: Normalizer | None  # None only for streamed data without pretrained statistics
    notes: list[str]
    config: TrainConfig


def weights_network(weights: LoadedWeights) -> Pretrained:
    """An ImageNet architecture with published weights (its ImageNet head kept), as a Pretrained."""
    model = imagenet_architecture(weights.architecture)
    load_backbone(model, weights)
    size = weights.preprocessing.size
    spec = {"name": weights.architecture, "in_shape": [3, size, size], "num_classes": 1000, "options": {}}
    return Pretrained(model, spec, weights.preprocessing.normalizer(), None, Path(weights.origin))


def open_weights(source: str, config: TrainConfig) -> Opened:
    """`imagenet:NAME` / `hf-hub:REPO` (or `imagenet` with an ImageNet --model): the data as RGB at the
    weights' size (or --image-size), normalized with the weights' statistics."""
    architecture = config.model if source == "imagenet" else None
    weights = resolve_weights(source, architecture)
    size = config.image_size or weights.preprocessing.size
    config = dataclasses.replace(config, model=weights.architecture, pretrained=source, image_size=size, channels=3)
    data = load_run_data(config)
    pretrained = weights_network(weights)
    spec, normalizer, notes = adapt_input(pretrained, data)
    notes.insert(0, f"{source}: {weights.architecture} from {weights.origin}; RGB at {size}x{size} px")
    for note in notes:
        log.info("%s", note)
    return Opened(pretrained, data, spec, normalizer, notes, config)


def open_pretrained(source: str | Path, config: TrainConfig) -> Opened:
    """Load `config.data` (at the network's image size unless config.image_size says otherwise) and
    the network from `source`, adapted to the data's channels and size."""
    if isinstance(source, str) and is_weights_source(source):
        return open_weights(source, config)
    payload = read_pretrained(source)
    trained_shape = checkpoint_in_shape(payload)
    if config.image_size is None and trained_shape and trained_shape[1] == trained_shape[2]:
        # resizable sources (digits, npz, folders) come at the size the network was trained on
        config = dataclasses.replace(config, image_size=trained_shape[1])
    data = load_run_data(config)
    pretrained = load_pretrained(source, config, data.shape[1:], payload)
    spec, normalizer, notes = adapt_input(pretrained, data)
    if normalizer is None and not data.streaming:
        normalizer = Normalizer.fit(data.train.images, config.preprocess)
    for note in notes:
        log.info("%s", note)
    return Opened(pretrained, data, spec, normalizer, notes, config)
