"""A model's spec (name, input shape, class count, options) from a run's config, and the model it builds."""

from __future__ import annotations

import logging
from typing import Any

import torch.nn as nn

from ..config import TrainConfig
from ..errors import ConfigError
from ..registry import spec_check, suggest
from . import MODELS, create_model, model_options

log = logging.getLogger("convcoach")

# builder keyword -> the config field that sets it (builders take these two under longer names)
CONFIG_KEY = {"activation_name": "activation", "norm_spec": "norm"}


def model_spec(config: TrainConfig, in_shape: tuple[int, int, int], num_classes: int) -> dict[str, Any]:
    """What it takes to rebuild the model: name, input shape, class count, keyword options."""
    generic = {
        "depth": config.depth,
        "width": config.width,
        "activation_name": config.activation,
        "norm_spec": config.norm,
        "dropout": config.dropout,
        "stochastic_depth": config.stochastic_depth,
    }
    accepted = model_options(config.model)
    defaults = TrainConfig()
    options = {}
    for key, value in generic.items():
        if key in accepted:
            options[key] = value
        elif value not in (None, getattr(defaults, CONFIG_KEY.get(key, key))):
            log.warning("model '%s' has no %s option; ignoring %s", config.model, key, value)
    for key, value in config.model_options.items():
        flag = CONFIG_KEY.get(key, key)
        if key in generic and generic[key] != getattr(defaults, flag) and generic[key] != value:
            log.warning("model_options %s=%r overrides %s %r", key, value, flag, generic[key])
    options.update(config.model_options)
    return {"name": config.model, "in_shape": list(in_shape), "num_classes": num_classes, "options": options}


def build_model(spec: dict[str, Any]) -> nn.Module:
    """The registry model a spec describes (freshly initialized by torch's defaults)."""
    return create_model(spec["name"], tuple(spec["in_shape"]), spec["num_classes"], **spec["options"])


@spec_check("model")
def _check_model(value: str, config: TrainConfig) -> None:
    MODELS.get(value)
    known = model_options(value)
    for key in config.model_options:
        if key not in known:
            raise ConfigError(
                f"model '{value}' has no option '{key}'{suggest(key, known)}; options: {', '.join(known)}"
            )


@spec_check("pretrained")
def _check_pretrained(value: str | None, config: TrainConfig) -> None:
    from .imagenet import IMAGENET_ARCHITECTURES
    from .weights import IMAGENET_WEIGHTS

    if value is None:
        return
    if value.startswith("hf-hub:"):
        if "/" not in value[len("hf-hub:") :]:
            raise ConfigError(f"pretrained '{value}': give the hub repository, e.g. hf-hub:timm/resnet50.a1_in1k")
        return
    if value.startswith("imagenet:"):
        name = value.partition(":")[2]
        if name not in IMAGENET_WEIGHTS:
            raise ConfigError(f"pretrained '{value}': no such ImageNet weights; known: {', '.join(IMAGENET_WEIGHTS)}")
        if IMAGENET_WEIGHTS[name].architecture != config.model:
            raise ConfigError(
                f"pretrained '{value}' is {IMAGENET_WEIGHTS[name].architecture}'s: "
                f"use --model {IMAGENET_WEIGHTS[name].architecture}"
            )
        return
    if config.model not in IMAGENET_ARCHITECTURES:
        raise ConfigError(
            f"--pretrained needs an ImageNet architecture (--model): {', '.join(IMAGENET_ARCHITECTURES)}; "
            f"got '{config.model}'"
        )
