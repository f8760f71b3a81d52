"""Transfer learning: fine-tune a pretrained network on new data by the lectures' strategy table."""

from .finetune import finetune
from .heads import FreezeNormStats, discriminative_groups, freeze, replace_head
from .pretrained import Pretrained, load_pretrained
from .strategy import Choice, Similarity, choose_strategy, measure_similarity

__all__ = [
    "Choice",
    "FreezeNormStats",
    "Pretrained",
    "Similarity",
    "choose_strategy",
    "discriminative_groups",
    "finetune",
    "freeze",
    "load_pretrained",
    "measure_similarity",
    "replace_head",
]
