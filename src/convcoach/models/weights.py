"""Pretrained ImageNet weights: torchvision's published files (found offline first, else downloaded,
checked against the SHA-256 prefix in their names and cached atomically) and timm's safetensors on the
Hugging Face hub; each comes with its preprocessing (mean/std, 3 channels, image size)."""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.fetch import cache_root, download_verified
from ..data.preprocess import Normalizer
from ..errors import ConfigError
from .imagenet import IMAGENET_ARCHITECTURES
from .stages import split_stages

log = logging.getLogger("convcoach")

TORCHVISION_URL = "https://download.pytorch.org/models/"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """What the weights were trained on: RGB in [0, 1] pixel units normalized by mean/std at `size` px."""

    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    size: int = 224
    channels: int = 3

    def normalizer(self) -> Normalizer:
        return Normalizer(list(self.mean), list(self.std))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WeightsFile:
    """One of torchvision's published files: `file` ends in '-<SHA-256 prefix>.pth'."""

    architecture: str
    file: str
    top1: float  # ImageNet-1k validation accuracy torchvision reports, for the log
    preprocessing: Preprocessing = Preprocessing()

    @property
    def sha256_prefix(self) -> str:
        match = re.search(r"-([0-9a-f]{6,})\.", self.file)
        if not match:
            raise ValueError(f"{self.file}: no SHA-256 prefix in the name")
        return match.group(1)


# name -> file: the default of each architecture is torchvision's DEFAULT weights; '.v1' the original ones
IMAGENET_WEIGHTS: dict[str, WeightsFile] = {
    "alexnet": WeightsFile("alexnet", "alexnet-owt-7be5be79.pth", 56.522),
    "vgg11_bn": WeightsFile("vgg11_bn", "vgg11_bn-6002323d.pth", 70.370),
    "vgg16_bn": WeightsFile("vgg16_bn", "vgg16_bn-6c64b313.pth", 73.360),
    "resnet18": WeightsFile("resnet18", "resnet18-f37072fd.pth", 69.758),
    "resnet34": WeightsFile("resnet34", "resnet34-b627a593.pth", 73.314),
    "resnet50": WeightsFile("resnet50", "resnet50-11ad3fa6.pth", 80.858),
    "resnet50.v1": WeightsFile("resnet50", "resnet50-0676ba61.pth", 76.130),
    "mobilenet_v3_large": WeightsFile("mobilenet_v3_large", "mobilenet_v3_large-5c1a4163.pth", 75.274),
    "mobilenet_v3_large.v1": WeightsFile("mobilenet_v3_large", "mobilenet_v3_large-8738ca79.pth", 74.042),
}


@dataclass
class LoadedWeights:
    """A state dict in torchvision's layout with the architecture and preprocessing it needs."""

    state: dict[str, torch.Tensor]
    architecture: str
    preprocessing: Preprocessing
    origin: str  # where it came from: a file path, for the log and the run's record


def weights_dirs() -> list[Path]:
    """Where weight files are looked for, in order: $CONVCOACH_WEIGHTS, convcoach's cache, torch hub's
    (where torchvision keeps the files it downloaded)."""
    dirs = [Path(os.environ["CONVCOACH_WEIGHTS"])] if os.environ.get("CONVCOACH_WEIGHTS") else []
    return [*dirs, cache_root() / "weights", Path(torch.hub.get_dir()) / "checkpoints"]


def locate_weights(entry: WeightsFile, download: bool = True) -> Path:
    """The weights file on disk, downloading it into the cache when no folder has it (offline first)."""
    searched = weights_dirs()
    for folder in searched:
        if (folder / entry.file).is_file():
            return folder / entry.file
    target = cache_root() / "weights" / entry.file
    mirror = os.environ.get("CONVCOACH_WEIGHTS_URL")
    url = (mirror.rstrip("/") + "/" if mirror else TORCHVISION_URL) + entry.file
    where = f"put {entry.file} (from {TORCHVISION_URL}{entry.file}) in {searched[0]}"
    if not download:
        raise ConfigError(f"{entry.architecture} ImageNet weights not found: {where}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        log.info("downloading %s", url)
        download_verified(url, target, entry.sha256_prefix)
    except (ConfigError, OSError) as exc:
        raise ConfigError(
            f"{entry.architecture} ImageNet weights: not in {', '.join(map(str, searched))}, and {exc}; {where}"
        ) from None
    return target


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """A plain state dict from a .pth/.pt (loaded with weights_only=True) or .safetensors file."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except ImportError:
        raise ConfigError(f"{path}: reading .safetensors needs: pip install convcoach[hub]") from None
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: not a readable weights file ({detail})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not (isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise ConfigError(f"{path}: not a state dict of tensors")
    return state


def imagenet_weights(name: str) -> LoadedWeights:
    """torchvision's weights for `name` (an architecture, or 'resnet50.v1' for the original ones)."""
    if name not in IMAGENET_WEIGHTS:
        raise ConfigError(f"no ImageNet weights named '{name}'; known: {', '.join(IMAGENET_WEIGHTS)}")
    entry = IMAGENET_WEIGHTS[name]
    path = locate_weights(entry)
    log.info("%s ImageNet weights (top-1 %.1f%%): %s", entry.architecture, entry.top1, path)
    return LoadedWeights(read_state(path), entry.architecture, entry.preprocessing, str(path))


# timm names that share torchvision's state-dict layout (timm's plain ResNets use the same keys)
TIMM_ARCHITECTURES = {"resnet18": "resnet18", "resnet34": "resnet34", "resnet50": "resnet50"}


def hub_weights(repo: str) -> LoadedWeights:
    """timm's weights from the Hugging Face hub (model.safetensors + config.json), e.g. 'timm/resnet50.a1_in1k'.

    Honours HF_ENDPOINT and HF_HUB_OFFLINE (read when called) and the hub's own cache."""
    try:
        import huggingface_hub
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:
        raise ConfigError(f"hf-hub:{repo} needs the Hugging Face hub client: pip install convcoach[hub]") from None
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    endpoint = os.environ.get("HF_ENDPOINT") or None
    cache = os.environ.get("HF_HUB_CACHE") or (
        str(Path(os.environ["HF_HOME"]) / "hub") if os.environ.get("HF_HOME") else None
    )
    files = {}
    for name in ("config.json", "model.safetensors"):
        try:
            files[name] = Path(
                huggingface_hub.hf_hub_download(
                    repo, name, endpoint=endpoint, cache_dir=cache, local_files_only=offline
                )
            )
        except LocalEntryNotFoundError:
            state = "offline (HF_HUB_OFFLINE)" if offline else "and the hub could not be reached"
            raise ConfigError(
                f"hf-hub:{repo}: {name} is not in the Hugging Face cache {state}; "
                f"download it with internet once, or put the files in a folder and pass that folder's model file"
            ) from None
        except (HfHubHTTPError, OSError, ValueError) as exc:
            detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"hf-hub:{repo}: cannot fetch {name} ({detail})") from None
    try:
        config = json.loads(files["config.json"].read_text())
    except (ValueError, UnicodeDecodeError):
        raise ConfigError(f"hf-hub:{repo}: config.json is not JSON") from None
    architecture = str(config.get("architecture", ""))
    if architecture not in TIMM_ARCHITECTURES:
        raise ConfigError(
            f"hf-hub:{repo}: timm architecture '{architecture}' has no convcoach equivalent; "
            f"supported: {', '.join(TIMM_ARCHITECTURES)}"
        )
    cfg = config.get("pretrained_cfg", config)
    shape = cfg.get("input_size", [3, 224, 224])
    preprocessing = Preprocessing(
        tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD)), int(shape[-1]), int(shape[0])
    )
    return LoadedWeights(
        read_state(files["model.safetensors"]), TIMM_ARCHITECTURES[architecture], preprocessing, f"hf-hub:{repo}"
    )


def resolve_weights(source: str, architecture: str | None = None) -> LoadedWeights:
    """'imagenet' (with the architecture), 'imagenet:NAME', 'hf-hub:REPO', or a .pth/.safetensors file
    (ImageNet preprocessing assumed) for `architecture`."""
    if source == "imagenet" or source.startswith("imagenet:"):
        name = source.partition(":")[2] or architecture
        if not name:
            raise ConfigError("--pretrained imagenet needs the architecture: --model NAME, or imagenet:NAME")
        weights = imagenet_weights(name)
    elif source.startswith("hf-hub:"):
        weights = hub_weights(source[len("hf-hub:") :])
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(
                f"pretrained weights '{source}' not found: give imagenet, imagenet:NAME, hf-hub:REPO or a weights file"
            )
        if architecture not in IMAGENET_ARCHITECTURES:
            raise ConfigError(
                f"{path}: a weights file needs an ImageNet architecture (--model): {', '.join(IMAGENET_ARCHITECTURES)}"
            )
        weights = LoadedWeights(read_state(path), architecture, Preprocessing(), str(path))
    if architecture and weights.architecture != architecture:
        raise ConfigError(
            f"pretrained weights '{source}' are for {weights.architecture}, not --model {architecture}: "
            f"use --model {weights.architecture}"
        )
    return weights


def is_weights_source(source: str) -> bool:
    """A finetune --from that names weights rather than a convcoach checkpoint."""
    return source == "imagenet" or source.startswith(("imagenet:", "hf-hub:"))


def pretrained_input(source: str | None, image_size: int | None) -> dict[str, int]:
    """The data's source options a pretrained network needs, known without reading the weights:
    3 channels (gray sets replicated) at the given --image-size, else the weights' size."""
    if not source:
        return {}
    name = source.partition(":")[2] if source.startswith("imagenet:") else ""
    size = IMAGENET_WEIGHTS[name].preprocessing.size if name in IMAGENET_WEIGHTS else Preprocessing().size
    return {"channels": 3, "image_size": image_size or size}


@torch.no_grad()
def load_backbone(model: torch.nn.Module, weights: LoadedWeights, head: str | None = None) -> list[str]:
    """Copy `weights` into `model` (torchvision's layout), every tensor strictly except the classifier
    `head` (its qualified name; default: the one its anatomy names) when the class count differs;
    returns the keys left at their init."""
    if head is None:
        classifier = split_stages(model).head
        head = next(name for name, module in model.named_modules() if module is classifier)
    own = model.state_dict()
    state = dict(weights.state)
    fresh = [key for key in own if key.startswith(head + ".") and key in state and state[key].shape != own[key].shape]
    for key in fresh:
        del state[key]
    missing = [key for key in own if key not in state and key not in fresh]
    unexpected = [key for key in state if key not in own]
    mismatched = [key for key in state if key in own and state[key].shape != own[key].shape]
    if missing or unexpected or mismatched:
        if mismatched:
            key = mismatched[0]
            detail = f"'{key}' is {tuple(state[key].shape)} there, {tuple(own[key].shape)} in {weights.architecture}"
        else:
            detail = ", ".join(
                f"{what} {keys[:2]}" for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys
            )
        raise ConfigError(
            f"{weights.origin}: these weights are not {weights.architecture}'s ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(mismatched)} mismatched tensors; {detail})"
        )
    model.load_state_dict({**own, **state})
    return fresh
