"""Each architecture as named stages (stem, stage1.., fc1..) + neck + classifier, and the `truncated` model.

Transfer learning reads models through this view: which layers a strategy unfreezes, where stage
features are pooled, which Linear is the head. Running stages, neck and classifier in order is the
model's own forward pass (tests/models/test_stages.py checks it for every architecture)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..errors import ConfigError
from .resnet import ResNet

SPATIAL_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.FractionalMaxPool2d)


@dataclass
class Anatomy:
    """stages: (name, modules) in forward order; neck: parameter-free glue; classifier: (parent, attribute)."""

    stages: list[tuple[str, list[nn.Module]]]
    neck: list[nn.Module]
    classifier: tuple[nn.Module, str]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.stages]

    @property
    def head(self) -> nn.Linear:
        parent, attribute = self.classifier
        return getattr(parent, attribute)

    def stage_modules(self, name: str) -> list[nn.Module]:
        for stage, modules in self.stages:
            if stage == name:
                return modules
        raise ConfigError(f"no stage '{name}'; stages: {', '.join(self.names) or 'none'}")

    def run(self, x: torch.Tensor, upto: str | None = None) -> torch.Tensor:
        """Forward through the stages (up to and including `upto`); without `upto`, also the neck: the head's input."""
        for name, modules in self.stages:
            for module in modules:
                x = module(x)
            if name == upto:
                return x
        if upto is not None:
            self.stage_modules(upto)  # raises, listing the stages
        for module in self.neck:
            x = module(x)
        return x


def resnet_anatomy(model: ResNet) -> Anatomy:
    blocks = list(model.blocks)
    per_stage = max(len(blocks) // 3, 1)
    stages = [("stem", [model.stem])] + [
        (f"stage{s + 1}", blocks[s * per_stage : (s + 1) * per_stage]) for s in range(3)
    ]
    return Anatomy(stages, [model.pool, nn.Flatten(), model.dropout], (model, "fc"))


def _has_parameters(modules: list[nn.Module]) -> bool:
    return any(True for module in modules for _ in module.parameters())


def sequential_anatomy(model: nn.Sequential) -> Anatomy:
    """cnn, vgg, mlp, linear: conv stages end at a 2x2 pool; each hidden Linear opens an fc stage."""
    layers = list(model)
    linear_at = [index for index, layer in enumerate(layers) if isinstance(layer, nn.Linear)]
    if not linear_at or linear_at[-1] != len(layers) - 1:
        raise ConfigError("this network does not end in a Linear classifier; transfer needs one to replace")
    groups: list[list[nn.Module]] = []
    current: list[nn.Module] = []
    for layer in layers[:-1]:
        if isinstance(layer, nn.Linear) and _has_parameters(current):
            groups.append(current)
            current = []
        current.append(layer)
        if isinstance(layer, SPATIAL_POOLS):
            groups.append(current)
            current = []
    neck = current
    if _has_parameters(current):
        groups.append(current)
        neck = []
    stages, convs, fcs = [], 0, 0
    for modules in groups:
        if any(isinstance(m, nn.Conv2d) for module in modules for m in module.modules()):
            convs += 1
            stages.append((f"stage{convs}", modules))
        elif _has_parameters(modules):
            fcs += 1
            stages.append((f"fc{fcs}", modules))
        elif stages:  # a parameter-free group (a pool after the last conv stage) joins the stage before
            stages[-1][1].extend(modules)
        else:
            neck = modules + neck
    return Anatomy(stages, neck, (model, str(len(layers) - 1)))


class Truncated(nn.Module):
    """A network cut after one stage, with global average pooling and a new Linear classifier.

    The `stages` transfer strategy's result: linear classifiers on features of different stages
    (the lectures' advice for a very different dataset)."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        base: str = "resnet",
        base_options: dict | None = None,
        stage: str = "stage2",
    ) -> None:
        super().__init__()
        from . import create_model

        base_model = create_model(base, tuple(in_shape), 2, **(base_options or {}))
        anatomy = split_stages(base_model)
        if stage not in anatomy.names:
            raise ConfigError(f"truncated: model '{base}' has no stage '{stage}'; stages: {', '.join(anatomy.names)}")
        kept = anatomy.names[: anatomy.names.index(stage) + 1]
        self.stages = nn.ModuleDict({name: nn.Sequential(*anatomy.stage_modules(name)) for name in kept})
        self.pool = nn.AdaptiveAvgPool2d(1)
        was_training = base_model.training
        base_model.eval()
        with torch.no_grad():
            out = anatomy.run(torch.zeros(1, *in_shape), upto=stage)
        base_model.train(was_training)
        self.spatial = out.dim() == 4
        self.fc = nn.Linear(out.shape[1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages.values():
            x = stage(x)
        if self.spatial:
            x = self.pool(x)
        return self.fc(x.flatten(1))


def truncated_anatomy(model: Truncated) -> Anatomy:
    neck = [model.pool, nn.Flatten()] if model.spatial else [nn.Flatten()]
    return Anatomy([(name, [stage]) for name, stage in model.stages.items()], neck, (model, "fc"))


def truncated(
    in_shape: tuple[int, int, int],
    num_classes: int,
    base: str = "resnet",
    base_options: dict | None = None,
    stage: str = "stage2",
) -> nn.Module:
    return Truncated(in_shape, num_classes, base, base_options, stage)


# module class -> its anatomy; filled when a model registers (MODELS.register(name, module=..., anatomy=...))
ANATOMIES: dict[type, Callable[[nn.Module], Anatomy]] = {}


def split_stages(model: nn.Module) -> Anatomy:
    """The named stages of a registry model (looked up by class, most specific first)."""
    for cls in type(model).__mro__:
        if cls in ANATOMIES:
            return ANATOMIES[cls](model)
    raise ConfigError(
        f"cannot split a {type(model).__name__} into stages; known: {', '.join(c.__name__ for c in ANATOMIES)}"
    )
