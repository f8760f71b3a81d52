"""Models: a registry of architectures built from a name and keyword options."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..registry import Registry, suggest
from .convnets import cnn, vgg
from .footprint import Footprint, check_parameters, footprint
from .imagenet import (
    IMAGENET_ARCHITECTURES,
    VGG,
    AlexNet,
    ImageNetResNet,
    MobileNetV3,
    features_anatomy,
    imagenet_builder,
    imagenet_resnet_anatomy,
    mobilenet_anatomy,
)
from .resnet import ResNet, resnet
from .simple import linear, mlp
from .stages import ANATOMIES, Anatomy, Truncated, resnet_anatomy, sequential_anatomy, truncated, truncated_anatomy

UNDECLARED = object()  # register() without anatomy=: tests/models/test_model_anatomy.py fails on such a model


class ModelRegistry(Registry[Callable[..., nn.Module]]):
    """Model builders, each registered with its transfer anatomy, so adding a model is one `register` call."""

    def __init__(self) -> None:
        super().__init__("model")
        self.anatomies: dict[str, tuple[type[nn.Module], Callable[[Any], Anatomy]] | None] = {}
        self.min_sizes: dict[str, int] = {}  # the smallest square image a model takes (1 when unset)

    def register(
        self,
        *names: str,
        module: type[nn.Module] | None = None,
        anatomy: Callable[[Any], Anatomy] | None | object = UNDECLARED,
        min_size: int = 1,
    ) -> Callable:
        """`module`: the class the builder returns; `anatomy(model) -> Anatomy` names its stages, neck and
        classifier (how transfer/ reads it: models.stages.split_stages looks it up by `module`).
        `anatomy=None` declares a model transfer cannot split. `min_size`: the smallest square image it takes."""
        if anatomy is not None and anatomy is not UNDECLARED and module is None:
            raise TypeError(f"model {', '.join(names)}: an anatomy needs the module class it splits (module=...)")
        add_to_registry = super().register(*names)

        def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
            add_to_registry(builder)
            self.min_sizes.update(dict.fromkeys(names, min_size))
            if anatomy is UNDECLARED:
                return builder
            if anatomy is not None:
                known = ANATOMIES.setdefault(module, anatomy)
                if known is not anatomy:
                    raise KeyError(f"{module.__name__} already has another anatomy ({known.__name__})")
            for name in names:
                self.anatomies[name] = (module, anatomy) if anatomy is not None else None
            return builder

        return add


MODELS = ModelRegistry()
MODELS.register("resnet", module=ResNet, anatomy=resnet_anatomy)(resnet)
# a network cut after one stage (transfer/)
MODELS.register("truncated", module=Truncated, anatomy=truncated_anatomy)(truncated)
MODELS.register("linear", module=nn.Sequential, anatomy=sequential_anatomy)(linear)
MODELS.register("mlp", module=nn.Sequential, anatomy=sequential_anatomy)(mlp)
MODELS.register("cnn", module=nn.Sequential, anatomy=sequential_anatomy)(cnn)
MODELS.register("vgg", module=nn.Sequential, anatomy=sequential_anatomy)(vgg)
# torchvision's ImageNet architectures, by its names (--pretrained imagenet loads their published weights)
IMAGENET_ANATOMIES = {
    AlexNet: features_anatomy,
    VGG: features_anatomy,
    ImageNetResNet: imagenet_resnet_anatomy,
    MobileNetV3: mobilenet_anatomy,
}
IMAGENET_MIN_SIZES = {AlexNet: 63, VGG: 32}  # AlexNet: an 11x11/4 conv and three 3x3/2 pools; VGG: five 2x2 pools
IMAGENET_CLASSES = {"alexnet": AlexNet, "mobilenet_v3_large": MobileNetV3}  # the others by prefix: vgg, resnet
for _name in IMAGENET_ARCHITECTURES:
    _module = IMAGENET_CLASSES.get(_name) or (VGG if _name.startswith("vgg") else ImageNetResNet)
    MODELS.register(
        _name, module=_module, anatomy=IMAGENET_ANATOMIES[_module], min_size=IMAGENET_MIN_SIZES.get(_module, 1)
    )(imagenet_builder(_name))


def model_options(name: str) -> list[str]:
    """The keyword options a model accepts (besides in_shape and num_classes)."""
    builder = MODELS.get(name)
    if name == "resnet":
        from .resnet import ResNet

        builder = ResNet.__init__
    params = inspect.signature(builder).parameters
    return [
        p
        for p in params
        if p not in ("self", "in_shape", "num_classes") and params[p].kind is not inspect.Parameter.VAR_KEYWORD
    ]


def create_model(name: str, in_shape: tuple[int, int, int], num_classes: int, **options: Any) -> nn.Module:
    """Build a registered model; None options fall back to the builder's defaults, unknown ones are errors."""
    known = model_options(name)
    chosen = {k: v for k, v in options.items() if v is not None}
    for key in chosen:
        if key not in known:
            raise ConfigError(f"model '{name}' has no option '{key}'{suggest(key, known)}; options: {', '.join(known)}")
    builder = MODELS.get(name)
    smallest = MODELS.min_sizes.get(name, 1)
    if min(in_shape[1:]) < smallest:
        raise ConfigError(
            f"model '{name}' takes images of at least {smallest}x{smallest}, not {in_shape[1]}x{in_shape[2]}: "
            f"--image-size {smallest} or more"
        )
    what = f"model '{name}'" + (f" with {', '.join(f'{k}={v!r}' for k, v in chosen.items())}" if chosen else "")
    found = model_footprint(name, in_shape, num_classes, **chosen)
    if found:
        check_parameters(what, found)
    try:
        model = builder(tuple(in_shape), num_classes, **chosen)
        _dry_run(model, tuple(in_shape))
    except ConfigError:
        raise
    except (TypeError, ValueError, ZeroDivisionError, RuntimeError, IndexError) as exc:
        detail = _first_line(exc)
        too_small = "too small" in detail or "greater than" in detail
        hint = (
            "too deep for the image size: a smaller --depth or a larger --image-size helps"
            if too_small
            else "check these option values"
        )
        raise ConfigError(
            f"{what} cannot be built for {in_shape[0]}x{in_shape[1]}x{in_shape[2]} images and {num_classes} classes: "
            f"{detail} ({hint})"
        ) from None
    return model


def model_footprint(name: str, in_shape: tuple[int, int, int], num_classes: int, **options: Any) -> Footprint | None:
    """Parameters and activations per image of a registered model, counted on the meta device without
    allocating; None when the options cannot build it (`create_model` then says why)."""
    chosen = {k: v for k, v in options.items() if v is not None}
    try:
        return footprint(MODELS.get(name), tuple(in_shape), num_classes, **chosen)
    except Exception:  # noqa: BLE001 - any failure here is reported by the real build with the option names
        return None


def _first_line(exc: Exception) -> str:
    """An exception's message cut to one line for a ConfigError (its type name when it has none)."""
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def _dry_run(model: nn.Module, in_shape: tuple[int, int, int]) -> torch.Tensor:
    """One forward pass of two blank images in eval mode, so an impossible option combination fails
    here with its name rather than deep inside the first training step; the RNG is left untouched."""
    was_training = model.training
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model.eval()
            return model(torch.zeros(2, *in_shape, device=device))
    finally:
        model.train(was_training)


def check_user_model(model: nn.Module, in_shape: tuple[int, int, int], num_classes: int) -> None:
    """A model passed to the Trainer: it must take the data's images and return one logit per class."""
    shape = "x".join(map(str, in_shape))
    try:
        out = _dry_run(model, tuple(in_shape))
    except (TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise ConfigError(
            f"the model given to the Trainer cannot take this data's {shape} (CxHxW) images: {_first_line(exc)}"
        ) from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        got = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(
            f"the model given to the Trainer returns {got} per image; the data has {num_classes} classes, "
            f"so it must return ({num_classes},) logits"
        )


__all__ = ["MODELS", "ModelRegistry", "check_user_model", "create_model", "model_options"]
