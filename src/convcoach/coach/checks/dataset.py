"""Check 7: the data. Inputs normalized (per-channel mean ~0, std ~1), classes balanced, no test
images duplicated in training (by hash, and near-copies by 16-px fingerprints), labels in range and
related to the images (1-NN on pixels)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..advice import IMBALANCE_FIXES, imbalance_compensation
from ..check_report import CheckResult
from ..context import CheckContext
from ..data_rules import near_test_words, near_train_words
from ..run_facts import image_hashes, near_copies
from . import CHECKS

MEAN_TOLERANCE, STD_RANGE = 0.2, (0.5, 2.0)
IMBALANCE_WARN = 3.0  # largest / smallest class
# 1-NN accuracy must beat, by this many binomial standard deviations, the rate at which a reference label drawn
# at random (labels unrelated to the images) matches the query's: sum_k p_query(k) p_reference(k)
SIGNAL_Z = 3.0
KNN_SIZE = 16  # images are average-pooled to at most 16x16 for the nearest-neighbour probe


@CHECKS.register("data")
def data(context: CheckContext) -> list[CheckResult]:
    return [normalization(context), balance(context), duplicates(context), labels(context)]


def normalization(context: CheckContext) -> CheckResult:
    x, _ = context.batch(min(len(context.order), 2048))
    mean = x.mean(dim=(0, 2, 3)).tolist()
    std = x.std(dim=(0, 2, 3)).tolist()
    details = {"mean": mean, "std": std, "preprocess": context.config.preprocess}
    shown = f"per-channel mean {_fmt(mean)}, std {_fmt(std)}"
    if not all(math.isfinite(v) for v in mean + std):
        return CheckResult(
            "data_normalization", "fail", f"inputs contain NaN/inf ({shown})", "clean the images", details
        )
    centred = all(abs(m) <= MEAN_TOLERANCE for m in mean)
    scaled = all(STD_RANGE[0] <= s <= STD_RANGE[1] for s in std)
    if centred and scaled:
        return CheckResult("data_normalization", "pass", f"inputs normalized: {shown}", "", details)
    if centred:
        what = (
            "mean-subtracted but not scaled to unit std"
            if context.config.preprocess == "mean"
            else "not scaled to unit std"
        )
        return CheckResult("data_normalization", "warn", f"inputs {what}: {shown}", "use --preprocess meanstd", details)
    far = any(abs(m) > 5 for m in mean) or any(s > 10 for s in std)
    return CheckResult(
        "data_normalization",
        "fail" if far else "warn",
        f"inputs not normalized (not zero-centred): {shown}",
        "use --preprocess meanstd (per-channel mean/std of the training split)",
        details,
    )


def balance(context: CheckContext) -> CheckResult:
    counts = torch.bincount(context.data.train.labels, minlength=context.num_classes).tolist()
    classes = context.data.classes
    details = {"counts": dict(zip(classes, counts))}
    empty = [name for name, count in zip(classes, counts) if count == 0]
    if empty:
        return CheckResult(
            "data_balance",
            "fail",
            f"{len(empty)} classes have no training images (e.g. '{empty[0]}')",
            "add images for every class, or drop the empty classes",
            details,
        )
    ratio = max(counts) / min(counts)
    message = f"{min(counts)}-{max(counts)} training images per class over {len(counts)} classes"
    if ratio > IMBALANCE_WARN:
        rare = classes[counts.index(min(counts))]
        found = f"imbalanced: {message} ('{rare}' is rarest, {ratio:.1f}x)"
        if compensated := imbalance_compensation(context.config.to_dict()):  # the run trains for it already
            return CheckResult("data_balance", "pass", f"{found}, compensated by {compensated}", "", details)
        fix = f"{' or '.join(IMBALANCE_FIXES)}; collect more of the rare classes; watch per-class accuracy"
        return CheckResult("data_balance", "warn", found, fix, details)
    return CheckResult("data_balance", "pass", message, "", details)


def duplicates(context: CheckContext) -> CheckResult:
    bundle = context.data
    seen = {
        digest: int(label) for digest, label in zip(image_hashes(bundle.train.images), bundle.train.labels.tolist())
    }
    if bundle.val is not None:
        seen.update(zip(image_hashes(bundle.val.images), bundle.val.labels.tolist()))
    test = image_hashes(bundle.test.images)
    leaked = sum(digest in seen for digest in test)
    train_hashes = image_hashes(bundle.train.images)
    repeated = len(train_hashes) - len(set(train_hashes))
    details = {"test_in_train": leaked, "test_images": len(test), "repeated_in_train": repeated}
    near = None
    if bundle.val is not None and bundle.val.images is not None and bundle.test.images is not None:
        near = near_copies(bundle.train.images, bundle.val.images, bundle.test.images)
    if near:
        details["near_copies"] = near
    copied, repeats = near_test_words(near), near_train_words(near)
    if leaked == 0 and (copied or repeats):
        return CheckResult(
            "data_duplicates",
            "warn",
            copied or repeats,
            "remove the near-copies from the test split"
            if copied
            else "de-duplicate the training images by their downscaled copies",
            details,
        )
    if leaked == 0:
        return CheckResult(
            "data_duplicates",
            "pass",
            f"no test image appears in the training or validation split ({len(test)} checked by hash)"
            + (f"; {repeated} repeated training images" if repeated else ""),
            "",
            details,
        )
    share = leaked / max(len(test), 1)
    return CheckResult(
        "data_duplicates",
        "fail" if share > 0.1 else "warn",
        f"{leaked} of {len(test)} test images ({share:.1%}) also appear in training/validation: "
        "the test score is inflated",
        "remove the duplicates from the test split",
        details,
    )


def labels(context: CheckContext) -> CheckResult:
    bundle, classes = context.data, context.num_classes
    splits = {"train": bundle.train, "val": bundle.val, "test": bundle.test}
    for name, split in splits.items():
        if split is not None and len(split) and (int(split.labels.min()) < 0 or int(split.labels.max()) >= classes):
            return CheckResult(
                "data_labels", "fail", f"{name} labels outside 0..{classes - 1}", "fix the label files", {}
            )
    probe = nearest_neighbour_probe(context)
    accuracy, chance, queries = probe.accuracy, probe.chance, probe.queries
    details = {
        "knn_accuracy": accuracy,
        "chance_rate": chance,
        "majority_rate": probe.majority,
        "queries": queries,
    }
    if queries == 0:
        return CheckResult(
            "data_labels",
            "pass",
            f"labels in 0..{classes - 1} in every split (too few images for the 1-NN probe)",
            "",
            details,
        )
    z = (accuracy - chance) / math.sqrt(max(chance * (1 - chance), 1e-12) / queries)
    details["z"] = z
    shown = (
        f"a 1-nearest-neighbour classifier on pixels gets {accuracy:.0%} of {queries} held-out images "
        f"(labels unrelated to the images would match {chance:.0%}; majority class {probe.majority:.0%})"
    )
    if math.sqrt(queries * (1 - chance) / max(chance, 1e-12)) < SIGNAL_Z:  # the z of a perfect probe: too few to tell
        return CheckResult(
            "data_labels",
            "pass",
            f"labels in 0..{classes - 1}; {shown}: too few images for the probe to tell "
            f"(even 100% would not beat {chance:.0%} by {SIGNAL_Z:g} standard deviations)",
            "",
            details,
        )
    if z < SIGNAL_Z:
        return CheckResult(
            "data_labels",
            "warn",
            f"labels look unrelated to the images: {shown}",
            "check that images and labels were shuffled together and match "
            "(or pixels alone do not separate these classes)",
            details,
        )
    return CheckResult("data_labels", "pass", f"labels in 0..{classes - 1}; {shown}", "", details)


@dataclass
class Probe:
    """What the 1-NN label probe measured: its accuracy on `queries` held-out images, the rate a reference
    label drawn at random matches the query's (the probe's expected accuracy when labels are unrelated
    to the images: sum_k p_query(k) p_reference(k)) and the majority class's share of the queries."""

    accuracy: float
    chance: float
    majority: float
    queries: int


def nearest_neighbour_probe(context: CheckContext) -> Probe:
    """1-NN on pooled pixels: training subset as references, validation images (or the other half of
    the subset) as queries."""
    budget = context.budget
    order = context.order
    if context.data.val is not None and len(context.data.val) >= 10:
        val = context.data.val
        reference = order[: budget.knn_reference]
        pick = torch.randperm(len(val), generator=torch.Generator().manual_seed(context.config.seed))[
            : budget.knn_queries
        ]
        qx, qy = context.normalizer(val.images[pick].to(context.device)), val.labels[pick].to(context.device)
    else:
        half = len(order) // 2
        if half < 10:
            return Probe(0.0, 0.0, 0.0, 0)
        reference = order[: min(half, budget.knn_reference)]
        qx, qy = context.images(order[half : half + budget.knn_queries])
    rx, ry = context.images(reference)
    distances = torch.cdist(_features(qx), _features(rx))
    predicted = ry[distances.argmin(dim=1)]
    accuracy = (predicted == qy).float().mean().item()
    classes = max(context.num_classes, int(qy.max()) + 1, int(ry.max()) + 1)
    query_share = np.bincount(qy.cpu().numpy(), minlength=classes) / len(qy)
    reference_share = np.bincount(ry.cpu().numpy(), minlength=classes) / len(ry)
    return Probe(accuracy, float(query_share @ reference_share), float(query_share.max()), len(qy))


def _features(x: torch.Tensor) -> torch.Tensor:
    if max(x.shape[-2:]) > KNN_SIZE:
        x = F.adaptive_avg_pool2d(x, KNN_SIZE)
    return x.flatten(1)


def _fmt(values: list[float]) -> str:
    return "/".join(f"{v:.2g}" for v in values)
