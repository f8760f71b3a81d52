"""The lectures' init experiment as a tool: forward N(0, 1) noise (or a data batch) through a freshly
initialized model and read each layer's activation statistics (`convcoach stats`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from ..config import TrainConfig
from ..data import DataBundle, Normalizer
from ..errors import ConfigError
from ..models.init import initialize
from ..models.spec import build_model, model_spec
from ..precision import resolve_device
from ..train.setup import load_run_data
from .stats import Finding, LayerStats, activation_stats, interpret

FLAT_INPUT_MODELS = {"mlp"}  # flatten first: N(0, 1) input of `width` features, as in the lectures
HISTOGRAM_VALUES = 20000


@dataclass
class InitStats:
    layers: list[LayerStats]
    findings: list[Finding]
    model: str
    init: str
    source: str  # noise | data
    input_shape: list[int]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": "stats",
            "model": self.model,
            "init": self.init,
            "input": self.source,
            "input_shape": self.input_shape,
            "layers": [s.to_dict() for s in self.layers],
            "findings": [f.__dict__ for f in self.findings],
            **self.extra,
        }


def init_stats(
    config: TrainConfig,
    batch: int = 16,
    source: str = "noise",
    data: DataBundle | None = None,
    keep_values: bool = False,
) -> InitStats:
    """Per-layer activation statistics of the configured model at init on `batch` inputs.

    `source` noise: x ~ N(0, 1); an mlp then gets `width` input features, so every layer is
    width x width like the lectures' 6 x 4096 tanh net. `source` data: a normalized training batch."""
    if source not in ("noise", "data"):
        raise ConfigError(f"input must be noise or data, got '{source}'")
    if batch < 2:
        raise ConfigError(f"batch must be >= 2 (a std needs two samples), got {batch}")
    config = config.validate()
    device = resolve_device(config.device)
    probe_spec = model_spec(config, (1, 1, 1), 10)
    needs_data = source == "data" or config.model not in FLAT_INPUT_MODELS
    if needs_data and data is None:
        data = load_run_data(config)
    if data is not None:
        shape, classes = tuple(data.shape), data.num_classes
    else:
        shape, classes = (probe_spec["options"].get("width") or 100, 1, 1), 10
    torch.manual_seed(config.seed)
    model, init_used = _fresh(model_spec(config, shape, classes), config, device)
    if source == "noise":
        x = torch.randn(batch, *shape, device=device)
    else:
        assert data is not None
        if data.streaming:
            raise ConfigError("--input data needs the images in memory; use --input noise or raise --memory-limit-gb")
        normalizer = Normalizer.fit(data.train.images, config.preprocess)
        index = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(config.seed))[:batch]
        x = normalizer(data.train.images[index].to(device))
    layers = activation_stats(model.train(), x, HISTOGRAM_VALUES if keep_values else 0)
    return InitStats(layers, interpret(layers), config.model, init_used, source, list(x.shape))


def _fresh(spec: dict[str, Any], config: TrainConfig, device: torch.device) -> tuple[nn.Module, str]:
    """Build and initialize; plain conv/linear nets are built on the meta device first, which skips
    torch's own (slow, then overwritten) init of large layers such as 4096 x 4096."""
    if config.init == "lsuv":
        raise ConfigError("stats shows an init's statistics; lsuv rescales on data, so use `convcoach check` for it")
    with torch.device("meta"):
        model = build_model(spec)
    plain = all(isinstance(m, (nn.Conv2d, nn.Linear)) or not list(m.parameters(recurse=False)) for m in model.modules())
    if plain and not list(model.buffers()) and config.init != "default":
        model = model.to_empty(device=device)
    else:
        model = build_model(spec).to(device)
    return model, initialize(model, config.init, config.activation, config.zero_init_residual)
