"""--class-weights: loss weights per class, balanced from the training split's counts or given one per class."""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from ..registry import spec_check

WORDS = ("balanced", "none")
EXAMPLE = "balanced, none or one weight per class such as 1,1,5"


def parse_class_weights(values: list[str]) -> str | list[float]:
    """'balanced' or 'none', or the explicit weights as floats (finite, >= 0, not all 0)."""
    words = [str(value).strip().lower() for value in values]
    if len(words) == 1 and words[0] in WORDS:
        return words[0]
    if not words:
        raise ConfigError(f"class_weights may not be empty; give {EXAMPLE}")
    try:
        weights = [float(word) for word in words]
    except ValueError:
        raise ConfigError(f"class_weights: '{','.join(words)}' is not {EXAMPLE}") from None
    bad = [word for word, weight in zip(words, weights) if not math.isfinite(weight) or weight < 0]
    if bad:
        raise ConfigError(f"class_weights: '{bad[0]}' is not a finite weight >= 0; give {EXAMPLE}")
    if not any(weights):
        raise ConfigError(f"class_weights are all 0: no sample would count; give {EXAMPLE}")
    return weights


def balanced_weights(counts: list[int]) -> list[float]:
    """sklearn's 'balanced' rule: w_c = n_samples / (n_classes * count_c), over the classes present;
    a class with no training images gets 0 (no training sample carries it)."""
    present = [count for count in counts if count > 0]
    total = sum(present)
    return [total / (len(present) * count) if count else 0.0 for count in counts]


def class_weights_for(values: list[str], labels: torch.Tensor, num_classes: int) -> list[float] | None:
    """The run's loss weights per class (None: unweighted), from `--class-weights` and the training labels."""
    parsed = parse_class_weights(values)
    if parsed == "none":
        return None
    if parsed == "balanced":
        return balanced_weights(torch.bincount(labels.long().cpu(), minlength=num_classes).tolist())
    if len(parsed) != num_classes:
        raise ConfigError(
            f"class_weights: {len(parsed)} weights given for {num_classes} classes; give one per class or balanced"
        )
    return parsed


@spec_check("class_weights")
def _check_class_weights(value: list[str], config: object) -> None:
    parse_class_weights(value)
