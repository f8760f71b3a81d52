"""Diagnosis rules about the data the run trained and was tested on (counted at the end of training):
files the loader skipped, training images repeated, test or validation images copied from training,
and a class far rarer than the others."""

from __future__ import annotations

import math
import statistics

from .advice import IMBALANCE_FIXES, imbalance_compensation, rare_classes
from .diagnosis import Facts, Finding
from .rule_registry import RULES
from .rules import _pct

SKIPPED_WARN = 0.01  # share of the files that could not be read
REPEATED_WARN = 0.2  # share of training images that repeat another
LEAKED_WARN = 0.01  # share of test (or validation) images found in training
NEAR_SHARE = 0.15  # test images closer to training than 95% of validation images: ~5% when drawn alike
NEAR_COPY = 0.99  # a median fingerprint cosine at which validation images are near-copies of training ones


def near_test_words(near: dict | None) -> str | None:
    """Words for test images that are near-copies of training images (run_facts.near_copies), or None.
    Closer than validation is not enough: the closest test images must be at copy level too (their 99th
    percentile cosine >= NEAR_COPY). Validation drawn from a noised or otherwise processed training split
    sits farther from training than clean test images do, with no copy among them."""
    if not near:
        return None
    share, count = near["test_near"], near["test_count"]
    if share < NEAR_SHARE or (share - 0.05) / math.sqrt(0.05 * 0.95 / count) < 4:
        return None
    if near.get("test_q99", 1.0) < NEAR_COPY:
        return None
    return (
        f"{share:.0%} of {count} test images sit closer to a training image than 95% of validation images do "
        f"(fingerprint cosine above {near['val_line']:.3f}; about 5% when the splits are drawn alike): "
        "near-copies that byte hashes miss (re-encoded, noised, resized or mirrored)"
    )


def near_train_words(near: dict | None) -> str | None:
    """Words for a training split that repeats near-copies of its images, or None. A test split unlike
    training also leaves validation the closer one; only near-copies put its median at copy level."""
    if not near or near["val_near"] < 0.5 or near["val_median"] < max(NEAR_COPY, near["test_q99"]):
        return None
    return (
        f"{near['val_near']:.0%} of {near['val_count']} validation images sit closer to a training image than 95% "
        f"of test images do; their median fingerprint cosine {near['val_median']:.3f} is above the test images' "
        f"99th percentile ({near['test_q99']:.3f}): the training split holds near-copies of its own images, "
        "and validation, drawn from it, has twins in training"
    )


@RULES.register("files_skipped", order=52)
def files_skipped(facts: Facts, found: list[Finding]) -> Finding | None:
    skipped = facts.skipped_files
    total = skipped + facts.train_count
    if not skipped or not total:
        return None
    share = skipped / total
    return Finding(
        "files_skipped",
        "warn" if share >= SKIPPED_WARN else "info",
        f"{skipped} image files could not be read and were left out",
        f"{skipped} of {total} files ({share:.1%}) are truncated or not images; the run trained without them",
        ["see which files: convcoach check --data PATH (the data check lists them)", "--strict (stop on the first)"],
    )


@RULES.register("split_leakage", order=54)
def split_leakage(facts: Facts, found: list[Finding]) -> Finding | None:
    leaked, tested = facts.test_in_train, facts.test_count
    if leaked is None or not tested or leaked / tested < LEAKED_WARN:
        near = near_test_words(facts.near_copies)
        if not near:
            return None
        return Finding(
            "split_leakage",
            "warn",
            "test images are near-copies of training images: the test score is inflated",
            near
            + (
                f"; test accuracy {_pct(facts.test_acc)} against {_pct(facts.best_val_acc)} on validation"
                if facts.test_acc is not None and facts.best_val_acc is not None
                else ""
            ),
            [
                "de-duplicate before splitting: compare downscaled copies of the images, not their bytes",
                "draw the test split from images never in training (another source, day or person)",
            ],
        )
    return Finding(
        "split_leakage",
        "fail" if leaked / tested >= 0.1 else "warn",
        "test images leaked from training: the test score is inflated",
        f"{leaked} of {tested} test images ({leaked / tested:.1%}) are byte-identical to training or "
        "validation images"
        + (
            f"; test accuracy {_pct(facts.test_acc)} against {_pct(facts.best_val_acc)} on validation"
            if facts.test_acc is not None and facts.best_val_acc is not None
            else ""
        ),
        ["remove the copies from the test split (convcoach check lists them: data_duplicates)"],
    )


@RULES.register("duplicated_images", order=55)
def duplicated_images(facts: Facts, found: list[Finding]) -> Finding | None:
    repeated, total = facts.repeated_in_train, facts.train_count
    if repeated is None or not total or repeated / total < REPEATED_WARN:
        near = near_train_words(facts.near_copies)
        if not near:
            return None
        return Finding(
            "duplicated_images",
            "warn",
            "the training set repeats near-copies of its images: validation overstates",
            near,
            [
                "de-duplicate the training images by their downscaled copies, then collect more distinct ones",
                "augmentation stands in for distinct images (--augment hflip,translate:2)",
            ],
        )
    unique = total - repeated
    val = ""
    if facts.val_in_train and facts.val_count:
        val = f"; {facts.val_in_train} of {facts.val_count} validation images are copies too, so validation overstates"
    return Finding(
        "duplicated_images",
        "warn",
        f"the training set repeats its images: {unique} distinct images among {total}",
        f"{repeated} training images ({repeated / total:.0%}) are byte-identical to another{val}",
        [
            "remove the duplicates and collect more distinct images",
            "augmentation stands in for distinct images (--augment hflip,translate:2)",
        ],
    )


@RULES.register("class_imbalance", order=126)
def class_imbalance(facts: Facts, found: list[Finding]) -> Finding | None:
    counts = facts.train_counts
    if not counts or len(counts) < 2 or not facts.test_per_class:
        return None
    median = statistics.median(counts)
    names = list(facts.test_per_class)
    rare = [(names[i], counts[i]) for i in rare_classes(counts) if i < len(names)]
    if not rare:
        return None
    listed = ", ".join(f"{name} {n} ({_pct(facts.test_per_class[name])} right on test)" for name, n in rare)
    compensated = imbalance_compensation(facts.options)  # then the imbalance is known and handled: information
    return Finding(
        "class_imbalance",
        "info" if compensated else "warn",
        f"class imbalance{f', compensated by {compensated}' if compensated else ''}: "
        f"{', '.join(name for name, _ in rare)} far rarer than the other classes",
        f"training images per class: {listed}, against a median of {median:.0f}",
        [
            *IMBALANCE_FIXES,
            f"collect more images of {rare[0][0]}",
            "judge the run by per-class accuracy (convcoach eval --checkpoint RUN: confusion.png)",
        ],
    )
