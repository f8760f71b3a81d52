"""Diagnosis rules that read the test split against validation and per class (summary.json): a test set
unlike validation, noisy training labels, and classes the model rarely or never predicts right."""

from __future__ import annotations

import math

from .advice import weight_skew
from .diagnosis import Facts, Finding
from .rule_registry import RULES
from .rules import _pct

SPLIT_GAP = 0.10  # accuracy points between validation and test beyond sampling noise that name a cause
WEAK_CLASS = 0.5  # a class below this share of the overall test accuracy is rarely predicted right
MISSED_CLASS = 0.1  # ...and below this accuracy it is (almost) never predicted right
LEAKS = {"split_leakage", "duplicated_images"}  # copies between splits explain a test/validation gap


def _split_gap(facts: Facts) -> float | None:
    """Test minus best validation accuracy when it exceeds both SPLIT_GAP and 4 standard errors, else None."""
    if facts.test_acc is None or facts.best_val_acc is None or facts.diverged:
        return None
    if facts.val_count < 20 or facts.test_count < 20:
        return None
    val, test = facts.best_val_acc, facts.test_acc
    noise = 4 * math.sqrt(val * (1 - val) / facts.val_count + test * (1 - test) / facts.test_count)
    gap = test - val
    return gap if abs(gap) > max(SPLIT_GAP, noise) else None


@RULES.register("test_differs", order=58)
def test_differs(facts: Facts, found: list[Finding]) -> Finding | None:
    """Test far below validation: the test split is not drawn like the training and validation splits."""
    gap = _split_gap(facts)
    if gap is None or gap > 0 or any(f.cause in LEAKS for f in found):
        return None
    return Finding(
        "test_differs",
        "warn",
        "the test set differs from validation: its images are shifted or its labels wrong",
        f"test accuracy {_pct(facts.test_acc)} against {_pct(facts.best_val_acc)} on validation "
        f"({facts.test_count} and {facts.val_count} images; sampling noise explains at most a few points)",
        [
            "compare the two splits with the same checkpoint: convcoach eval --checkpoint RUN --split val, "
            "then --split test (confusion.png shows where they part)",
            "check that the test images come from the same source, size and preprocessing as training",
            "look at the test split's confident mistakes (mistakes.png): wrong labels show up there",
        ],
    )


@RULES.register("label_noise", order=59)
def label_noise(facts: Facts, found: list[Finding]) -> Finding | None:
    """Test far above validation: the validation labels (drawn from the training split) are noisy, so the
    training labels are too; the model learns past them and scores better on a clean test set."""
    gap = _split_gap(facts)
    if gap is None or gap < 0 or any(f.cause in LEAKS for f in found):
        return None
    return Finding(
        "label_noise",
        "warn",
        "the training labels are noisy: the clean test set scores far above validation",
        f"test accuracy {_pct(facts.test_acc)} against {_pct(facts.best_val_acc)} on validation, "
        f"which is held out from the training labels ({facts.val_count} images)",
        [
            "find the wrong labels: convcoach eval --checkpoint RUN --split train (mistakes.png)",
            "label smoothing limits what a wrong label teaches (--label-smoothing 0.2)",
            "stop earlier: the best epoch by validation is the one before the net memorizes the noise",
        ],
    )


@RULES.register("classes_missed", order=129)
def classes_missed(facts: Facts, found: list[Finding]) -> Finding | None:
    """A model that learned overall, yet some classes are rarely or never right on the test set."""
    per_class, overall = facts.test_per_class, facts.test_acc
    if any(f.cause == "class_imbalance" for f in found):
        return None  # the rare classes are the missed ones: the imbalance is the cause
    if not per_class or overall is None or facts.chance is None or overall < facts.chance + 0.2:
        return None
    if facts.test_count < 10 * len(per_class):
        return None  # a handful of images per class cannot tell
    weak = {name: acc for name, acc in per_class.items() if acc < WEAK_CLASS * overall}
    if not weak:
        return None
    missed = [name for name, acc in weak.items() if acc < MISSED_CLASS]
    listed = ", ".join(f"{name} {_pct(acc)}" for name, acc in sorted(weak.items(), key=lambda item: item[1]))
    title = "classes the model never predicts right" if missed else "classes the model rarely predicts right"
    fixes = [
        "count the images per class (convcoach check: the data check) and add images of these classes",
        "see which classes take their images: convcoach eval --checkpoint RUN (confusion.png)",
        "check these classes' labels and images in the training split",
    ]
    evidence = f"test accuracy per class: {listed}, against {_pct(overall)} overall"
    skew = weight_skew(facts.options, facts.train_counts, list(per_class))
    if skew:  # the loss itself was told to favor some classes
        title = f"{title}: the class weights favor {skew.heavy}"
        evidence += f"; {skew}"
        fixes = ["--class-weights none (every image counts alike)", "--class-weights balanced (by the class counts)"]
    return Finding(
        "classes_missed",
        # a hard class (Fashion-MNIST's shirts) is rarely right in a healthy run too
        "warn" if missed or skew else "info",
        title,
        evidence,
        fixes,
    )
