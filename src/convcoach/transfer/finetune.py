"""`convcoach finetune`: a pretrained network on new data, by strategy, as a normal run (summary.json, best.pt).

Load -> adapt the input (channels, size) -> resolve the strategy (auto: the lectures' table) ->
new head -> freeze -> Trainer with discriminative LRs and frozen BatchNorm statistics."""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

import torch

from ..config import FIXED_EPOCHS, TrainConfig
from ..errors import ConfigError, TrainingDiverged
from ..files import write_json
from ..models.stages import split_stages
from ..train.loop import Trainer
from ..train.optim import default_lr
from .cached_probe import cached_probe_run, fit_head, probe_features
from .heads import FreezeNormStats, GradualUnfreeze, discriminative_groups, freeze, replace_head
from .pretrained import open_pretrained
from .stage_probes import best_probe, cut_at, probe_stages, set_head
from .strategy import check_strategy, choose_strategy, measure_similarity, trainable_stages

log = logging.getLogger("convcoach")

# spec option -> TrainConfig field, for the options every registry model shares
GENERIC_OPTIONS = {
    "depth": "depth",
    "width": "width",
    "activation_name": "activation",
    "norm_spec": "norm",
    "dropout": "dropout",
}


def config_for_spec(config: TrainConfig, spec: dict[str, Any]) -> TrainConfig:
    """The run's config with the model fields of `spec`, so config.yaml tells what was trained."""
    options = dict(spec["options"])
    defaults = TrainConfig()
    fields = {field: getattr(defaults, field) for field in GENERIC_OPTIONS.values()}
    fields.update({field: options.pop(key) for key, field in GENERIC_OPTIONS.items() if key in options})
    return dataclasses.replace(config, model=spec["name"], model_options=options, **fields)


def _warn_ignored_model_fields(config: TrainConfig, spec: dict[str, Any]) -> None:
    """--model/--depth/... describe plain state dicts; a convcoach checkpoint names its own architecture."""
    defaults, wanted = TrainConfig(), config_for_spec(config, spec)
    fields = ["model", "model_options", *GENERIC_OPTIONS.values()]
    ignored = [f for f in fields if getattr(config, f) not in (getattr(defaults, f), getattr(wanted, f))]
    if ignored:
        log.warning(
            "ignoring %s: the checkpoint defines the architecture (%s)",
            ", ".join(f"--{f}" for f in ignored),
            spec["name"],
        )


HEAD_INITS = ("probe", "random")
LINEAR_MODES = ("cached", "epochs")


def norm_statement(frozen: int, trainable: int) -> str:
    """Which BatchNorm statistics stay as pretrained and which are re-estimated, and why."""
    parts = []
    if frozen:
        parts.append(
            f"{frozen} BatchNorm layer(s) in frozen stages keep their pretrained statistics (eval mode): "
            "a frozen layer must compute what the layers after it were trained on"
        )
    if trainable:
        parts.append(
            f"{trainable} in trainable stages re-estimate theirs from the new data: their weights move, "
            "so their statistics must follow"
        )
    return "; ".join(parts) or "no BatchNorm layers"


def finetune(
    config: TrainConfig,
    source: str | Path,
    strategy: str = "auto",
    head_lr_mult: float = 1.0,
    backbone_lr_mult: float = 0.1,
    head_init: str = "probe",
    linear: str = "cached",
    views: int = 0,
    unfreeze_every: int | None = None,
) -> dict[str, Any]:
    """Fine-tune `source` (a convcoach checkpoint or run dir, or a state dict of `config.model`) on
    `config.data` and return the run summary; the checkpoint loads with `convcoach eval`.

    head_init "probe" starts the new head from logistic regression on the frozen penultimate
    features (LP-FT); "random" from PyTorch's default Linear init. The `linear` strategy fits the head
    on cached features ("cached": one backbone pass per split and augmented view, `views` of them) or
    trains it for config.epochs through the frozen network ("epochs"). `unfreeze_every` N thaws one
    more stage from the top every N epochs (gradual unfreezing)."""
    check_strategy(strategy)
    if head_init not in HEAD_INITS:
        raise ConfigError(f"head_init must be one of {', '.join(HEAD_INITS)}; got '{head_init}'")
    if config.resume:
        raise ConfigError("finetune does not resume; run it again (it starts from the pretrained weights)")
    if config.nproc > 1:
        raise ConfigError("finetune does not launch processes (--nproc); run it under torchrun for DDP")
    if linear not in LINEAR_MODES:
        raise ConfigError(f"linear must be one of {', '.join(LINEAR_MODES)}; got '{linear}'")
    if views < 0 or (unfreeze_every is not None and unfreeze_every < 1):
        raise ConfigError(f"views must be >= 0 and unfreeze_every >= 1; got {views} and {unfreeze_every}")
    if not all(0 < mult < math.inf for mult in (head_lr_mult, backbone_lr_mult)):
        raise ConfigError(
            f"LR multipliers must be finite numbers > 0; got head {head_lr_mult}, backbone {backbone_lr_mult}"
        )
    if config.epochs is None:  # a fixed length: the default recipe's time rule is for training from scratch
        config = dataclasses.replace(config, epochs=FIXED_EPOCHS)
    if config.lr is None:  # the head at the optimizer's default, the backbone at backbone_lr_mult of it
        config = dataclasses.replace(config, lr=default_lr(config.optimizer))
    opened = open_pretrained(source, config.validate())
    config, data, spec, normalizer = opened.config, opened.data, opened.spec, opened.normalizer
    model, transfer = opened.pretrained.model, {"from": str(source), "strategy": strategy, "input": opened.notes}
    if opened.pretrained.classes is not None:
        _warn_ignored_model_fields(config, opened.pretrained.spec)

    if strategy == "auto":
        cached = None
        if not data.streaming and data.val is not None:  # the same features the probe reads next: one pass
            features = probe_features(model, data, normalizer, seed=config.seed, precision=config.precision)
            cached = (features.train, features.val)
        similarity = measure_similarity(model, data, normalizer, config.seed, features=cached)
        choice = choose_strategy(len(data.train), data.num_classes, similarity, split_stages(model).names)
        strategy = choice.strategy
        transfer.update(reason=choice.reason, similarity=dataclasses.asdict(similarity))
        log.info("%s", choice.reason)
    torch.manual_seed(config.seed)  # the new head's initialization
    if strategy == "stages":
        probes = probe_stages(model, data, normalizer, config.seed)
        best = best_probe(probes)
        model, spec = cut_at(model, spec, best, data.num_classes)
        anatomy = split_stages(model)
        head = anatomy.head  # starts as the best probe; trained further as a linear classifier
        transfer.update(stage_probes=[p.summary() for p in probes], best_stage=best.stage)
        log.info(
            "best stage: %s (probe val %.1f%%); training a linear classifier on it", best.stage, best.val_accuracy * 100
        )
        trainable = trainable_stages("linear", anatomy.names)
    else:
        anatomy = split_stages(model)
        head = replace_head(anatomy, data.num_classes)
        spec = {**spec, "num_classes": data.num_classes}
        if strategy == "linear" and linear == "cached" and not data.streaming and unfreeze_every is None:
            norms = freeze(model, anatomy, [])
            transfer.update(
                resolved="linear",
                trainable_stages=[],
                head_init="cached probe",
                frozen_norm_layers=len(norms),
                norm_stats=norm_statement(len(norms), 0),
                head_lr_mult=head_lr_mult,
                backbone_lr_mult=backbone_lr_mult,
                trainable_parameters=sum(p.numel() for p in head.parameters()),
            )
            return cached_probe_run(model, head, data, normalizer, spec, config_for_spec(config, spec), transfer, views)
        if head_init == "probe":
            features = probe_features(model, data, normalizer, seed=config.seed, precision=config.precision)
            probe = fit_head(features, data.num_classes, config.seed)
            set_head(head, probe)
            transfer.update(head_probe=probe.summary())
        trainable = trainable_stages(strategy, anatomy.names)
    frozen_norms = freeze(model, anatomy, trainable)
    norms = (torch.nn.modules.batchnorm._BatchNorm,)
    all_norms = sum(isinstance(m, norms) for m in model.modules())
    frozen_bn = sum(isinstance(m, norms) for m in frozen_norms)
    freezer = FreezeNormStats(frozen_norms)
    callbacks = [freezer]
    if unfreeze_every:
        frozen_stages = [(name, mods) for name, mods in reversed(anatomy.stages) if name not in trainable]
        callbacks.append(GradualUnfreeze(frozen_stages, unfreeze_every, freezer))
        transfer.update(unfreeze_every=unfreeze_every, unfreeze_order=[name for name, _ in frozen_stages])
    transfer.update(
        resolved=strategy,
        trainable_stages=trainable,
        frozen_norm_layers=len(frozen_norms),
        norm_stats=norm_statement(frozen_bn, all_norms - frozen_bn),
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        head_init="stage probe" if strategy == "stages" else head_init,
        head_lr_mult=head_lr_mult,
        backbone_lr_mult=backbone_lr_mult,
    )
    trainer = Trainer(
        config_for_spec(config, spec),
        model=model,
        data=data,
        normalizer=normalizer,
        callbacks=callbacks,
        param_groups=discriminative_groups(
            model, head, config.weight_decay, head_lr_mult, backbone_lr_mult, frozen_too=bool(unfreeze_every)
        ),
    )
    trainer.spec = spec  # a registry spec (not "custom"), so `convcoach eval` rebuilds the network
    summary = trainer.fit()
    if trainer.dist.is_main:
        summary.update(command="finetune", transfer=transfer)
        write_json(trainer.run_dir / "summary.json", summary)
    if summary.get("status") == "diverged":
        raise TrainingDiverged(summary)
    return summary
