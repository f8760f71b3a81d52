"""k-nearest neighbours: the known neighbours and votes of a hand-made example under L1 and L2."""

from __future__ import annotations

import pytest
import torch

from convcoach import knn
from convcoach.errors import ConfigError

# From the query (0, 0): L1 distances 3, 4, 3.5, 6 ; L2 distances 3, 2.83, 3.5, 4.24
REFERENCE = torch.tensor([[3.0, 0.0], [2.0, 2.0], [0.0, -3.5], [-3.0, -3.0]])
LABELS = torch.tensor([0, 1, 0, 1])
QUERY = torch.tensor([[0.0, 0.0]])


def test_l1_and_l2_find_different_nearest_neighbours():
    d1, i1 = knn.nearest(REFERENCE, QUERY, 4, "l1")
    d2, i2 = knn.nearest(REFERENCE, QUERY, 4, "l2")
    assert i1.tolist() == [[0, 2, 1, 3]]
    assert d1.tolist() == [[3.0, 3.5, 4.0, 6.0]]
    assert i2.tolist() == [[1, 0, 2, 3]]
    assert d2[0].tolist() == pytest.approx([8**0.5, 3.0, 3.5, 18**0.5], abs=1e-4)


def test_majority_vote_over_k_for_l1_and_l2():
    l1 = knn.predict(REFERENCE, LABELS, QUERY, [1, 2, 3, 4], "l1", 2)
    l2 = knn.predict(REFERENCE, LABELS, QUERY, [1, 2, 3, 4], "l2", 2)
    # L1 neighbours' labels 0, 0, 1, 1 ; L2 neighbours' labels 1, 0, 0, 1
    assert {k: int(v) for k, v in l1.items()} == {1: 0, 2: 0, 3: 0, 4: 0}
    assert {k: int(v) for k, v in l2.items()} == {1: 1, 2: 1, 3: 0, 4: 1}  # ties (k=2, 4) go to the nearest's class


def test_vote_tie_goes_to_the_tied_class_met_first():
    labels = torch.tensor([[2, 1, 1, 2, 0], [0, 1, 2, 0, 1]])
    assert knn.vote(labels, 3).tolist() == [2, 0]


def test_equal_distances_are_ordered_by_reference_index():
    reference = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])
    _, indices = knn.nearest(reference, torch.zeros(1, 1), 4, "l1")
    assert indices.tolist() == [[0, 1, 2, 3]]


def test_chunked_search_equals_one_pass():
    torch.manual_seed(0)
    reference, queries = torch.randn(50, 6), torch.randn(37, 6)
    whole = knn.nearest(reference, queries, 5, "l1", chunk_rows=1000)[1]
    chunked = knn.nearest(reference, queries, 5, "l1", chunk_rows=4)[1]
    assert torch.equal(whole, chunked)


def test_k_is_chosen_on_validation_then_tested():
    # 1-NN is fooled by one mislabelled point right next to each validation sample; 3-NN outvotes it
    train_x = torch.tensor([[0.0], [0.1], [0.2], [0.05], [5.0], [5.1], [5.2], [5.05]])
    train_y = torch.tensor([0, 0, 0, 1, 1, 1, 1, 0])
    val = (torch.tensor([[0.04], [5.04]]), torch.tensor([0, 1]))
    result = knn.fit_and_test((train_x, train_y), val, val, [1, 3], "l2", 2)
    assert result.val_accuracy == {1: 0.0, 3: 1.0}
    assert result.k == 3 and result.test_accuracy == 1.0


def test_bad_k_and_distance_are_config_errors():
    with pytest.raises(ConfigError, match="distance must be one of l1, l2; got 'cosine'"):
        knn.nearest(REFERENCE, QUERY, 1, "cosine")
    with pytest.raises(ConfigError, match=r"k must be in 1\.\.4 \(the number of reference samples\); got 9"):
        knn.nearest(REFERENCE, QUERY, 9, "l2")
    with pytest.raises(ConfigError, match="--k must be comma-separated integers like 1,3,5; got '1,x'"):
        knn.parse_ks("1,x")
    with pytest.raises(ConfigError, match=r"choosing k among \[1, 3\] needs a validation split"):
        knn.fit_and_test((REFERENCE, LABELS), None, None, [1, 3], "l2")
