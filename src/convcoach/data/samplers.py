"""Each training epoch's order by name: a permutation (random) or class-balanced draws (balanced)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import ConfigError
from ..registry import Registry, spec_check

Order = Callable[[torch.Generator], torch.Tensor]  # a generator -> one epoch's indices into the split
SAMPLERS: Registry[Callable[[torch.Tensor], Order]] = Registry("sampler")


@SAMPLERS.register("random")
def random_order(labels: torch.Tensor) -> Order:
    """Every image once per epoch, in a fresh permutation."""
    return lambda generator: torch.randperm(len(labels), generator=generator)


@SAMPLERS.register("balanced")
def balanced_order(labels: torch.Tensor) -> Order:
    """As many draws as images, with replacement, each with probability 1 / (classes * count of its class):
    a class drawn uniformly, then one of its images uniformly, so every class is served equally often
    (torch's WeightedRandomSampler's distribution, without its 2^24-image limit)."""
    labels = labels.long().cpu()
    if not len(labels):
        return random_order(labels)
    by_class = torch.argsort(labels, stable=True)  # the images of each class side by side
    counts = torch.bincount(labels)
    starts = torch.cumsum(counts, 0) - counts
    present = torch.nonzero(counts).flatten()

    def order(generator: torch.Generator) -> torch.Tensor:
        classes = present[torch.randint(len(present), (len(labels),), generator=generator)]
        within = torch.rand(len(labels), generator=generator, dtype=torch.float64) * counts[classes]
        return by_class[starts[classes] + within.long().clamp_max(counts[classes] - 1)]

    return order


@spec_check("sampler")
def _check_sampler(value: str, config: object) -> None:
    if value not in SAMPLERS:
        raise ConfigError(f"sampler must be one of {', '.join(SAMPLERS.names())}; got '{value}'")
