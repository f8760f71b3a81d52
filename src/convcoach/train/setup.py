"""The one place a validated config becomes a run's parts: seeded RNGs, the data, the normalizer,
the model spec and initialized model, the losses, the effective learning rate and optimizer settings.

The Trainer, `check` and `stats` (coach/), `tune`, `finetune` (transfer/), `eval`/`predict` and the
report all build from here, so a run and its checks cannot drift apart."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..config import TrainConfig
from ..data import BatchLoader, DataBundle, Normalizer, SourceOptions, load_data, parse_augment
from ..models import check_user_model, model_footprint
from ..models.dropconnect import apply_dropconnect
from ..models.footprint import check_fits
from ..models.init import initialize
from ..models.spec import build_model, model_spec
from ..models.stages import split_stages
from ..models.weights import LoadedWeights, load_backbone, pretrained_input, resolve_weights
from .class_weights import class_weights_for
from .losses import LossFn, create_loss
from .lr_finder import LrChoice, auto_lr, needs_auto
from .optim import USES_CONVENTION, USES_MOMENTUM, OptimSettings, default_lr
from .schedules import scaled_lr

log = logging.getLogger("convcoach")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_run_data(config: TrainConfig, **source_changes: Any) -> DataBundle:
    """The run's data: `config.data` split (stratified) and subset as the config says (3 channels at the
    weights' size for a --pretrained network)."""
    source_changes = {**pretrained_input(config.pretrained, config.image_size), **source_changes}
    options = SourceOptions.from_config(config, **source_changes)
    return load_data(config.data, options, config.val_fraction, config.subset)


def fit_normalizer(data: DataBundle, config: TrainConfig) -> Normalizer:
    """Per-channel statistics of the training split (a 512-image sample when it streams from disk)."""
    if data.streaming:
        channels = data.shape[0]
        identity = Normalizer([0.0] * channels, [1 / 255] * channels)
        sample = next(iter(BatchLoader(data.train, 512, identity, shuffle=True, seed=config.seed)))[0]
        return Normalizer.fit(sample.round().clamp(0, 255).to(torch.uint8), config.preprocess)
    return Normalizer.fit(data.train.images, config.preprocess)


def base_lr(config: TrainConfig) -> float:
    """`--lr`, or the optimizer's default when it is unset or auto (before the range test has run);
    unset with --pretrained, 0.1x the default: the notes fine-tune pretrained layers at ~0.1x the rate."""
    if isinstance(config.lr, int | float):
        return config.lr
    return default_lr(config.optimizer) * (0.1 if config.pretrained and config.lr is None else 1.0)


def effective_lr(config: TrainConfig) -> float:
    """The peak LR the run uses: `base_lr`, scaled by the effective batch / base_batch_size."""
    return scaled_lr(base_lr(config), config.effective_batch_size(), config.base_batch_size)


def optim_settings(config: TrainConfig, lr: float, weight_decay: float | None = None) -> OptimSettings:
    """The optimizer's settings at peak LR `lr`; muon's filter step scales with `lr` as the run's would."""
    decay = config.weight_decay if weight_decay is None else weight_decay
    peak = effective_lr(config)
    muon_lr = config.muon_lr if lr == peak else config.muon_lr * lr / peak
    return OptimSettings(lr, config.momentum, config.momentum_convention, decay, muon_lr)


def initialize_model(model: nn.Module, config: TrainConfig, sample: Callable[[], torch.Tensor]) -> str:
    """Apply the config's init; `sample()` gives LSUV its data batch (called only for lsuv)."""
    batch = sample() if config.init == "lsuv" else None
    return initialize(model, config.init, config.activation, config.zero_init_residual, batch)


def warn_unused(config: TrainConfig) -> None:
    """Options set away from their default that the chosen optimizer or loss never reads."""
    defaults = TrainConfig()
    unused = []
    if config.optimizer not in USES_MOMENTUM and config.momentum != defaults.momentum:
        why = f"optimizer {config.optimizer} has no momentum (only {', '.join(USES_MOMENTUM)})"
        unused.append(("momentum", config.momentum, why))
    if config.optimizer not in USES_CONVENTION and config.momentum_convention != defaults.momentum_convention:
        why = f"only optimizer {', '.join(USES_CONVENTION)} reads it"
        unused.append(("momentum_convention", config.momentum_convention, why))
    if config.optimizer != "muon" and config.muon_lr != defaults.muon_lr:
        unused.append(("muon_lr", config.muon_lr, "only optimizer muon reads it"))
    if config.loss in ("svm", "hinge") and config.label_smoothing not in (0.0, defaults.label_smoothing):
        unused.append(("label_smoothing", config.label_smoothing, "the svm loss scores hard labels"))
    for key, value, why in unused:
        log.warning("ignoring %s %s: %s", key, value, why)


@dataclass
class RunParts:
    """What a config builds before the loop: see `build_run`."""

    data: DataBundle
    normalizer: Normalizer
    spec: dict[str, Any]  # rebuilds the model (name 'custom' for a user model)
    model: nn.Module  # on the device, initialized
    init_used: str
    loss_fn: LossFn  # with label smoothing: what training minimizes
    eval_loss_fn: LossFn  # without: what validation and test report
    lr: float  # the effective peak LR
    lr_choice: LrChoice | None = None  # what --lr auto's range test found, when it ran
    class_weights: list[float] | None = None  # the training loss's weight per class (--class-weights)


def build_run(
    config: TrainConfig,
    device: torch.device,
    model: nn.Module | None = None,
    data: DataBundle | None = None,
    normalizer: Normalizer | None = None,
) -> RunParts:
    """Seed, load the data, fit the normalizer, build and initialize the model (or check a user
    `model`, which keeps its own weights), and make the losses: in this order, so a seed gives
    the same run however it is started."""
    seed_everything(config.seed)
    weights = resolve_weights(config.pretrained, config.model) if config.pretrained and model is None else None
    data = data or load_run_data(config)
    class_weights = class_weights_for(config.class_weights, data.train.labels, data.num_classes)
    parse_augment(config.augment_pipeline()).check_size(*data.shape[1:])  # before the LR test trains on blanks
    normalizer = normalizer or (weights.preprocessing.normalizer() if weights else fit_normalizer(data, config))
    spec = model_spec(config, data.shape, data.num_classes)
    if model is None and (found := model_footprint(spec["name"], data.shape, data.num_classes, **spec["options"])):
        check_fits(f"model '{spec['name']}'", found, config.batch_size, device)  # before it can be OOM-killed
    net = (model if model is not None else build_model(spec)).to(device)
    apply_dropconnect(net, config.dropconnect)  # training-only: eval uses all weights, so the spec has no trace of it
    if model is not None:
        check_user_model(net, data.shape, data.num_classes)
        spec = {"name": "custom", "in_shape": list(data.shape), "num_classes": data.num_classes, "options": {}}
        init_used = "user model"
    elif weights is not None:
        init_used = start_from(net, weights, data.shape)
    else:

        def sample() -> torch.Tensor:
            loader = BatchLoader(
                data.train, max(config.batch_size, 512), normalizer, device, channels_last=config.channels_last
            )
            return next(iter(loader))[0][:256]

        init_used = initialize_model(net, config, sample)
    per_class = torch.tensor(class_weights) if class_weights is not None else None
    # validation and test report the plain mean: the weights shape what training minimizes, not the score
    loss_fn, eval_loss_fn = create_loss(config.loss, config.label_smoothing, per_class), create_loss(config.loss)
    choice = None
    if needs_auto(config) and data.train.images is not None:
        images, labels = data.train.images, data.train.labels
        choice = auto_lr(config, net, images, labels, normalizer, eval_loss_fn, loss_fn, device)
        if choice.lr is None:
            log.warning("--lr auto: %s; using the optimizer's default %g", choice.reason, default_lr(config.optimizer))
        else:
            log.info("--lr auto: %s", choice.reason)
    lr = choice.lr if choice is not None and choice.lr is not None else effective_lr(config)
    return RunParts(data, normalizer, spec, net, init_used, loss_fn, eval_loss_fn, lr, choice, class_weights)


def start_from(net: nn.Module, weights: LoadedWeights, shape: tuple[int, int, int]) -> str:
    """Load pretrained weights into a freshly built registry model (its new head keeps torch's init)."""
    fresh = load_backbone(net, weights)
    if shape[1:] != (weights.preprocessing.size,) * 2:
        log.info(
            "images are %dx%d; the weights were trained at %d px (adaptive pooling takes both)",
            shape[1],
            shape[2],
            weights.preprocessing.size,
        )
    new = f", a new {split_stages(net).head.out_features}-class head" if fresh else ""
    return f"pretrained: {weights.origin}{new}"


def config_lr(config: TrainConfig, peak: float) -> float:
    """The --lr value that gives peak LR `peak` at this batch size (undoing --base-batch-size's scaling)."""
    return peak * config.base_batch_size / config.effective_batch_size() if config.base_batch_size else peak
