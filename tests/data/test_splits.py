"""Seeded, stratified splits and subsets."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from convcoach.data.splits import stratified_split, stratified_subset
from convcoach.errors import ConfigError

# 10 of class 0, 20 of class 1, 7 of class 2, interleaved so position says nothing about the class
LABELS = np.random.default_rng(0).permutation(np.repeat([0, 1, 2], [10, 20, 7]))


def counts(labels: np.ndarray) -> dict[int, int]:
    return {int(k): v for k, v in sorted(Counter(labels.tolist()).items())}


def test_each_class_holds_out_round_fraction_times_count():
    keep, held = stratified_split(LABELS, 0.3, seed=0)
    assert counts(LABELS[held]) == {0: 3, 1: 6, 2: 2}  # round(3.0), round(6.0), round(2.1)
    assert counts(LABELS[keep]) == {0: 7, 1: 14, 2: 5}


def test_split_indices_are_sorted_disjoint_and_complete():
    keep, held = stratified_split(LABELS, 0.3, seed=0)
    assert np.all(np.diff(keep) > 0) and np.all(np.diff(held) > 0)
    assert set(keep.tolist()).isdisjoint(held.tolist())
    assert sorted(keep.tolist() + held.tolist()) == list(range(len(LABELS)))


def test_split_is_deterministic_for_a_seed():
    first = stratified_split(LABELS, 0.3, seed=5)
    again = stratified_split(LABELS, 0.3, seed=5)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])


def test_another_seed_holds_out_different_samples():
    _, held_a = stratified_split(LABELS, 0.3, seed=5)
    _, held_b = stratified_split(LABELS, 0.3, seed=6)
    assert len(held_a) == len(held_b) == 11
    assert not np.array_equal(held_a, held_b)


def test_small_class_keeps_at_least_one_and_gives_at_least_one():
    labels = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    keep, held = stratified_split(labels, 0.1, seed=0)
    assert counts(labels[held]) == {0: 1, 1: 1}  # round(0.2) would hold none of class 0
    _, held_all = stratified_split(labels, 0.99, seed=0)
    assert counts(labels[held_all]) == {0: 1, 1: 9}  # never the whole class


def test_singleton_class_stays_in_keep():
    labels = np.array([0, 1, 1, 1, 1])
    keep, held = stratified_split(labels, 0.5, seed=0)
    assert 0 in keep.tolist()
    assert counts(labels[held]) == {1: 2}


def test_zero_fraction_holds_out_nothing():
    keep, held = stratified_split(LABELS, 0.0, seed=0)
    assert held.size == 0
    assert keep.tolist() == list(range(len(LABELS)))


def test_subset_size_and_class_proportions():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    chosen = stratified_subset(labels, 10, seed=0)
    assert len(chosen) == 10
    assert counts(labels[chosen]) == {0: 5, 1: 3, 2: 2}
    assert len(set(chosen.tolist())) == 10


def test_subset_hands_the_remainder_to_the_largest_fractions():
    labels = np.repeat([0, 1, 2], [60, 25, 15])
    chosen = stratified_subset(labels, 7, seed=0)  # exact shares 4.2, 1.75, 1.05
    assert counts(labels[chosen]) == {0: 4, 1: 2, 2: 1}


def test_subset_is_seeded():
    labels = np.repeat([0, 1], [40, 40])
    np.testing.assert_array_equal(stratified_subset(labels, 10, 1), stratified_subset(labels, 10, 1))
    assert not np.array_equal(stratified_subset(labels, 10, 1), stratified_subset(labels, 10, 2))


def test_subset_at_least_the_set_size_returns_everything():
    assert stratified_subset(LABELS, 100, seed=0).tolist() == list(range(len(LABELS)))


def test_subset_below_one_raises():
    with pytest.raises(ConfigError, match="subset must be >= 1, got 0"):
        stratified_subset(LABELS, 0, seed=0)
