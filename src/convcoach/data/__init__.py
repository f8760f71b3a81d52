"""Data: sources -> splits -> preprocessing -> batching -> augmentation."""

from .augment import AUGMENTS, Augmenter, parse_augment
from .loader import BatchLoader
from .preprocess import Normalizer
from .sources import SOURCES, DataBundle, SourceOptions, Split, load_data

__all__ = [
    "AUGMENTS",
    "Augmenter",
    "BatchLoader",
    "DataBundle",
    "Normalizer",
    "SOURCES",
    "SourceOptions",
    "Split",
    "load_data",
    "parse_augment",
]
