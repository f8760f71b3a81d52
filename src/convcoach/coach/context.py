"""What every pre-training check shares: the data loaded once, fresh models, fixed batches, short runs."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..config import TrainConfig
from ..data import DataBundle, Normalizer
from ..data.splits import stratified_subset
from ..errors import ConfigError
from ..models import model_options
from ..models.spec import build_model, model_spec
from ..precision import resolve_device
from ..train.losses import LossFn, create_loss
from ..train.lr_finder import train_steps  # noqa: F401  (the checks' short runs: the range test's loop)
from ..train.optim import create_optimizer
from ..train.setup import effective_lr, initialize_model, load_run_data, optim_settings, seed_everything


@dataclass
class CheckBudget:
    """Bounds that keep `convcoach check` under a minute for the default model on 2 CPU cores."""

    subset: int = 2048  # training images the model-based checks draw from
    loss_batch: int = 256  # batch for the initial-loss and regularization checks
    overfit_examples: int = 20  # the lectures' tiny set
    overfit_steps: int = 150
    sweep_steps: int = 8  # train/lr_finder.py's SweepPlan: check predicts what --lr auto does
    sweep_points_per_decade: int = 2  # the run's batch, warm-up and grid otherwise: see SweepPlan
    grad_entries: int = 3  # parameters sampled per tensor
    grad_batch: int = 4
    grad_width: int = 4  # registry models are rebuilt this narrow (in float64) for the gradient check
    stats_batch: int = 64
    knn_reference: int = 2000
    knn_queries: int = 500
    # intra-op threads while checking: small batches gain little from more, and on a shared machine
    # two threads per process oversubscribe the cores (measured 5-10x slower); None keeps torch's
    threads: int | None = 1

    @classmethod
    def quick(cls) -> CheckBudget:
        """`--quick`: one sweep point per decade and shorter runs, for a first look or CI."""
        return cls(
            subset=512,
            overfit_steps=60,
            sweep_steps=8,
            sweep_points_per_decade=1,
            grad_entries=2,
            knn_reference=500,
            knn_queries=200,
        )


class CheckContext:
    """The configured data and model, prepared once for all checks (or a user model, copied per check,
    and a user normalizer, as the Trainer takes them)."""

    def __init__(
        self,
        config: TrainConfig,
        model: nn.Module | None = None,
        data: DataBundle | None = None,
        budget: CheckBudget | None = None,
        normalizer: Normalizer | None = None,
    ) -> None:
        self.config = config.validate()
        self.budget = budget or CheckBudget()
        self.device = resolve_device(config.device)
        seed_everything(config.seed)
        self.data = data or load_run_data(config)
        if self.data.streaming:
            raise ConfigError(
                f"convcoach check needs the images in memory; "
                f"{config.data} is larger than --memory-limit-gb {config.memory_limit_gb:g}"
            )
        self.normalizer = normalizer or Normalizer.fit(self.data.train.images, config.preprocess)
        self.user_model = model
        self.spec = model_spec(config, self.data.shape, self.data.num_classes) if model is None else None
        self.num_classes = self.data.num_classes
        self.loss_fn: LossFn = create_loss(config.loss)  # no label smoothing: the ln(C) reference
        self.train_loss_fn: LossFn = create_loss(config.loss, config.label_smoothing)
        self.lr = effective_lr(config)
        labels = self.data.train.labels.numpy()
        chosen = stratified_subset(labels, min(self.budget.subset, len(labels)), config.seed)
        self.order = torch.from_numpy(chosen)[
            torch.randperm(len(chosen), generator=torch.Generator().manual_seed(config.seed))
        ]

    @property
    def custom(self) -> bool:
        return self.user_model is not None

    def images(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized training images (no augmentation) and labels at `index`, on the device."""
        split = self.data.train
        return self.normalizer(split.images[index].to(self.device)), split.labels[index].to(self.device)

    def batch(self, size: int, start: int = 0, channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed batch from the seeded check subset; `start` walks through it (wrapping around)."""
        index = self.order[(torch.arange(size) + start) % len(self.order)]
        x, y = self.images(index)
        return (x.contiguous(memory_format=torch.channels_last) if channels_last else x), y

    def fresh_model(
        self, dtype: torch.dtype = torch.float32, channels_last: bool = False, **options: object
    ) -> nn.Module:
        """The configured model, freshly initialized with the run's seed (a copy of a user model).

        `options` override the registry model's options (e.g. width=4 or dropout=0.0);
        `channels_last` follows the training run's memory format (faster convolutions on CPU)."""
        seed_everything(self.config.seed)
        if self.user_model is not None:
            model = copy.deepcopy(self.user_model)
        else:
            assert self.spec is not None
            known = set(model_options(self.spec["name"]))
            spec = {
                **self.spec,
                "options": {**self.spec["options"], **{k: v for k, v in options.items() if k in known}},
            }
            model = build_model(spec).to(self.device)  # LSUV's sample batch is on the device
            initialize_model(model, self.config, lambda: self.batch(256)[0])
        model = model.to(device=self.device, dtype=dtype).train()
        return model.to(memory_format=torch.channels_last) if channels_last else model

    def optimizer(self, model: nn.Module, lr: float, weight_decay: float | None = None) -> torch.optim.Optimizer:
        return create_optimizer(self.config.optimizer, model, optim_settings(self.config, lr, weight_decay))
