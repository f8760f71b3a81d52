"""A new head for the new classes, freezing by stage, frozen BatchNorm statistics, discriminative LRs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from ..models.stages import Anatomy
from ..train.callbacks import Callback, Priority
from ..train.optim import parameter_groups

if TYPE_CHECKING:
    from ..train.loop import Trainer

log = logging.getLogger("convcoach")


def replace_head(anatomy: Anatomy, num_classes: int) -> nn.Linear:
    """Swap the classifier for a freshly initialized Linear with `num_classes` outputs."""
    parent, attribute = anatomy.classifier
    old = anatomy.head
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None).to(old.weight.device)
    setattr(parent, attribute, new)
    return new


def freeze(model: nn.Module, anatomy: Anatomy, trainable_stages: list[str]) -> list[nn.Module]:
    """requires_grad only for the head and `trainable_stages`; returns the norm layers left frozen."""
    trainable = [module for name in trainable_stages for module in anatomy.stage_modules(name)] + [anatomy.head]
    for param in model.parameters():
        param.requires_grad_(False)
    live = set()
    for module in trainable:
        for sub in module.modules():
            live.add(id(sub))
            for param in sub.parameters(recurse=False):
                param.requires_grad_(True)
    norms = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)
    return [m for m in model.modules() if isinstance(m, norms) and id(m) not in live]


class FreezeNormStats(Callback):
    """Keeps the frozen layers' BatchNorm in eval mode during training: running statistics stay as
    pretrained and batches are normalized with them (a frozen layer must compute what it did)."""

    order = Priority.FREEZE_NORM_STATS

    def __init__(self, norms: list[nn.Module]) -> None:
        self.norms = norms

    def on_batch_start(self, trainer: Trainer, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # the loop calls model.train() every epoch and evaluation restores train mode: re-freeze per batch
        for norm in self.norms:
            norm.eval()
        return x, y


def discriminative_groups(
    model: nn.Module,
    head: nn.Module,
    weight_decay: float,
    head_lr_mult: float = 1.0,
    backbone_lr_mult: float = 0.1,
    frozen_too: bool = False,
) -> Callable[[float], list[dict]]:
    """Optimizer groups from the base LR: the new head at head_lr_mult x LR, pretrained layers at
    backbone_lr_mult x LR (the lectures: ~0.1 of the original rate), each split decay / no decay;
    `frozen_too` includes the frozen layers, for GradualUnfreeze to thaw."""
    head_ids = {id(param) for param in head.parameters()}

    def groups(base_lr: float) -> list[dict]:
        result = []
        for group in parameter_groups(model, weight_decay, frozen_too):
            for part, mult in (("head", head_lr_mult), ("backbone", backbone_lr_mult)):
                params = [p for p in group["params"] if (id(p) in head_ids) == (part == "head")]
                if params:
                    result.append(
                        {"params": params, "weight_decay": group["weight_decay"], "lr": base_lr * mult, "name": part}
                    )
        return result

    return groups


class GradualUnfreeze(Callback):
    """ULMFiT's gradual unfreezing (Howard & Ruder 2018): every `every` epochs the next frozen stage
    from the top thaws (requires_grad on; its BatchNorm statistics re-estimated from then on)."""

    order = Priority.FREEZE_NORM_STATS

    def __init__(self, stages: list[tuple[str, list[nn.Module]]], every: int, frozen_norms: FreezeNormStats) -> None:
        self.stages = stages  # frozen stages, top (nearest the head) first
        self.every = every
        self.frozen_norms = frozen_norms
        self.thawed: list[str] = []

    def on_epoch_start(self, trainer: Trainer) -> None:
        due = min(trainer.state.epoch // self.every, len(self.stages))
        while len(self.thawed) < due:
            name, modules = self.stages[len(self.thawed)]
            thawing = {id(sub) for module in modules for sub in module.modules()}
            for module in modules:
                for param in module.parameters():
                    param.requires_grad_(True)
            self.frozen_norms.norms = [norm for norm in self.frozen_norms.norms if id(norm) not in thawing]
            self.thawed.append(name)
            log.info("gradual unfreezing: epoch %d thaws %s", trainer.state.epoch + 1, name)
