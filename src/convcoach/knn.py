"""The lectures' k-nearest-neighbour classifier: L1/L2 distances, majority vote over k, k chosen on validation.

Batched with torch: one `torch.cdist` per chunk of query rows (no Python loop over images), so the
distance matrix never holds more than `chunk_rows` x N values."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .errors import ConfigError

# d1(I1, I2) = sum_p |I1p - I2p| ; d2(I1, I2) = sqrt(sum_p (I1p - I2p)^2)
DISTANCES = {"l1": 1.0, "l2": 2.0}


def check_distance(distance: str) -> float:
    if distance not in DISTANCES:
        raise ConfigError(f"distance must be one of {', '.join(DISTANCES)}; got '{distance}'")
    return DISTANCES[distance]


@torch.no_grad()
def nearest(
    reference: torch.Tensor, queries: torch.Tensor, k: int, distance: str = "l2", chunk_rows: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """(distances, indices), each (Q, k): the k nearest reference rows of every query, closest first.

    Equal distances among the k found are ordered by reference index (lower first)."""
    p = check_distance(distance)
    if not 1 <= k <= len(reference):
        raise ConfigError(f"k must be in 1..{len(reference)} (the number of reference samples); got {k}")
    reference = reference.flatten(1).float()
    found_d, found_i = [], []
    for start in range(0, len(queries), chunk_rows):
        chunk = queries[start : start + chunk_rows].flatten(1).float().to(reference.device)
        dist = torch.cdist(chunk, reference, p=p)  # L2 through a matmul: |a|^2 + |b|^2 - 2ab
        values, indices = dist.topk(k, dim=1, largest=False)
        # deterministic order: by index, then a stable sort by distance
        by_index = indices.sort(dim=1)
        values, indices = values.gather(1, by_index.indices), by_index.values
        order = values.sort(dim=1, stable=True).indices
        found_d.append(values.gather(1, order))
        found_i.append(indices.gather(1, order))
    return torch.cat(found_d), torch.cat(found_i)


def vote(neighbour_labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Majority vote over each row of (Q, k) labels, closest first; a tie goes to the tied class met first."""
    votes = torch.zeros(len(neighbour_labels), num_classes, dtype=torch.long, device=neighbour_labels.device)
    votes.scatter_add_(1, neighbour_labels, torch.ones_like(neighbour_labels))
    tied = votes == votes.max(dim=1, keepdim=True).values  # (Q, C)
    in_tie = tied.gather(1, neighbour_labels)  # (Q, k): is this neighbour's class among the winners?
    first = in_tie.to(torch.uint8).argmax(dim=1)  # argmax returns the first maximal index
    return neighbour_labels.gather(1, first[:, None]).squeeze(1)


def predict(
    reference: torch.Tensor,
    labels: torch.Tensor,
    queries: torch.Tensor,
    ks: list[int],
    distance: str = "l2",
    num_classes: int | None = None,
) -> dict[int, torch.Tensor]:
    """Predictions for every k in `ks` from one neighbour search with max(ks)."""
    num_classes = num_classes or int(labels.max()) + 1
    _, indices = nearest(reference, queries, max(ks), distance)
    neighbour_labels = labels.to(indices.device)[indices]
    return {k: vote(neighbour_labels[:, :k], num_classes) for k in ks}


@dataclass
class KnnResult:
    distance: str
    k: int  # the k chosen on the validation split
    val_accuracy: dict[int, float] = field(default_factory=dict)
    test_accuracy: float | None = None

    def summary(self) -> dict:
        return {
            "distance": self.distance,
            "k": self.k,
            "val_accuracy": {str(k): v for k, v in self.val_accuracy.items()},
            "test_accuracy": self.test_accuracy,
        }


def fit_and_test(
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None,
    test: tuple[torch.Tensor, torch.Tensor] | None,
    ks: list[int],
    distance: str = "l2",
    num_classes: int | None = None,
) -> KnnResult:
    """Choose k by validation accuracy (ties: the smaller k), then measure test accuracy with it."""
    ks = sorted(set(ks))
    if not ks or ks[0] < 1:
        raise ConfigError(f"k values must be >= 1; got {ks}")
    if len(ks) > 1 and val is None:
        raise ConfigError(f"choosing k among {ks} needs a validation split (val_fraction > 0), or give one k")
    num_classes = num_classes or int(train[1].max()) + 1
    result = KnnResult(distance, ks[0])
    if val is not None:
        predictions = predict(train[0], train[1], val[0], ks, distance, num_classes)
        result.val_accuracy = {k: (pred.cpu() == val[1]).float().mean().item() for k, pred in predictions.items()}
        result.k = max(ks, key=lambda k: (result.val_accuracy[k], -k))
    if test is not None:
        pred = predict(train[0], train[1], test[0], [result.k], distance, num_classes)[result.k]
        result.test_accuracy = (pred.cpu() == test[1]).float().mean().item()
    return result


def parse_ks(text: str) -> list[int]:
    """'1,3,5' -> [1, 3, 5]."""
    try:
        ks = [int(item) for item in str(text).split(",") if item.strip()]
    except ValueError:
        raise ConfigError(f"--k must be comma-separated integers like 1,3,5; got '{text}'") from None
    if not ks or min(ks) < 1:
        raise ConfigError(f"--k values must be >= 1; got '{text}'")
    return ks
