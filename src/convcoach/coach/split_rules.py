"""Diagnosis rules that read the test split against validation and per class (summary.json): a test set
unlike validation, noisy training labels, and classes the model rarely or never predicts right."""

from __future__ import annotations

import math

from .advice import rare_classes, weight_skew
from .diagnosis import Facts, Finding
from .rule_registry import RULES
from .rules import MISSED_CLASS, _pct, classes_judged

SPLIT_GAP = 0.10  # accuracy points between validation and test beyond sampling noise that name a cause
WEAK_CLASS = 0.5  # a class below this share of the overall test accuracy is rarely predicted right
LEAKS = {"split_leakage", "duplicated_images"}  # copies between splits explain a test/validation gap
CLASS_GAP = 0.4  # a class this much less accurate on test than on validation (beyond 4 standard errors)


def _class_gaps(facts: Facts) -> list[tuple[str, float, float]]:
    """(class, validation accuracy, test accuracy) of the classes far less accurate on the test split than
    on validation: more than CLASS_GAP and 4 standard errors apart. Each share's variance uses (k+1)/(n+2),
    so 5 of 5 right on validation is not read as certainty."""
    val, test = facts.val_per_class, facts.test_per_class
    if not val or not test or not facts.val_class_counts or not facts.test_class_counts or facts.diverged:
        return []
    gaps = []
    for name, val_n, test_n in zip(test, facts.val_class_counts, facts.test_class_counts):
        if name not in val or val_n < 5 or test_n < 10:
            continue
        v, t = val[name], test[name]
        spread = sum(((k * n + 1) / (n + 2)) * (1 - (k * n + 1) / (n + 2)) / n for k, n in ((v, val_n), (t, test_n)))
        if v - t > max(CLASS_GAP, 4 * math.sqrt(spread)):
            gaps.append((name, v, t))
    return gaps


def _swapped(facts: Facts, names: list[str]) -> list[tuple[str, str]]:
    """Pairs of these classes whose test images are mostly taken for each other (labels exchanged)."""
    taken = {name: facts.test_taken_for.get(name) for name in names} if facts.test_taken_for else {}
    pairs = []
    for name in names:
        other = taken.get(name)
        if other and other[1] >= 0.5 and other[0] > name and (taken.get(other[0]) or [None])[0] == name:
            pairs.append((name, other[0]))
    return pairs


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


def _rare_explain(facts: Facts) -> bool:
    """Classes rare in training (class_imbalance's: under RARE of the median count) explain the test's
    shortfall: over the other classes, test and validation agree within SPLIT_GAP and 4 standard errors.
    Validation, drawn from the training split, holds almost none of the rare classes; a balanced test
    split holds its share of them, and the net never learned them."""
    counts, names = facts.train_counts, list(facts.test_per_class or {})
    val, val_n, test_n = facts.val_per_class, facts.val_class_counts, facts.test_class_counts
    if not counts or not val or not val_n or not test_n or not (len(counts) == len(names) == len(test_n)):
        return False
    rare = rare_classes(counts)
    if not rare:
        return False
    common = [i for i in range(len(counts)) if i not in rare]
    seen_val, seen_test = sum(val_n[i] for i in common), sum(test_n[i] for i in common)
    if seen_val < 20 or seen_test < 20:
        return False
    v = sum(val.get(names[i], 0.0) * val_n[i] for i in common) / seen_val
    t = sum(facts.test_per_class[names[i]] * test_n[i] for i in common) / seen_test
    noise = 4 * math.sqrt(v * (1 - v) / seen_val + t * (1 - t) / seen_test)
    return v - t <= max(SPLIT_GAP, noise)


def _off_balance(counts: list[int]) -> float:
    """Total variation between the class shares and equal shares."""
    return 0.5 * sum(abs(n / sum(counts) - 1 / len(counts)) for n in counts)


def _training_skewed(facts: Facts) -> bool:
    """Classes rare in training, and the training split farther from equal class shares than the test
    split: a class mix that differs between the splits is then class_imbalance's to name."""
    train, test = facts.train_counts, facts.test_class_counts
    if not train or not test or len(train) != len(test) or not sum(train) or not sum(test):
        return False
    return bool(rare_classes(train)) and _off_balance(train) > _off_balance(test)


MIX_DISTANCE = 0.3  # total variation between the training and test class shares: drawn otherwise
BROAD_SHIFT = 0.25  # share of pixel values whose mean moved: the test images as a whole, not a mark


def _class_mix(facts: Facts) -> str | None:
    """Words for a test split whose classes are drawn unlike the training split's (common training classes
    missing from test, or shares far apart), or None."""
    train, test, names = facts.train_counts, facts.test_class_counts, list(facts.test_per_class or {})
    if not train or not test or len(train) != len(test) or len(names) != len(test):
        return None
    if sum(test) < 10 * len(test) or not sum(train):
        return None  # a handful of images per class cannot tell
    usual = sorted(train)[len(train) // 2]
    missing = [name for name, n, m in zip(names, train, test) if m == 0 and n >= 0.2 * usual]
    distance = 0.5 * sum(abs(n / sum(train) - m / sum(test)) for n, m in zip(train, test))
    if not missing and distance < MIX_DISTANCE:
        return None
    held = [name for name, m in zip(names, test) if m]
    expected = None
    if facts.val_per_class:  # validation's per-class accuracy, weighted by the test split's class shares
        expected = sum(facts.val_per_class.get(name, 0.0) * m for name, m in zip(names, test)) / sum(test)
    absent = f"the test split holds {len(held)} of the {len(names)} classes (none of {', '.join(missing)}); "
    return (
        (absent if missing else "")
        + f"its class shares are {distance:.0%} apart from the training split's (total variation)"
        + (
            f"; validation's per-class accuracy weighted by the test's class shares gives {_pct(expected)}, "
            f"test {_pct(facts.test_acc)}: the test accuracy measures those classes"
            if expected is not None and facts.test_acc is not None
            else ""
        )
    )


def _pixels(facts: Facts) -> str:
    """The test images against the training images, pixel by pixel, in words ("" when not measured)."""
    shift = facts.pixel_shift
    if not shift:
        return ""
    if not shift["shifted"]:
        return (
            "; the images match the training images pixel by pixel (no pixel's mean differs beyond sampling "
            f"noise: at most {shift['max_z']:g} standard errors), so labels or what the net keyed on differ"
        )
    at = shift["at"]
    where = f"row {at[0]}, column {at[1]}" + (f", channel {at[2]}" if len(at) > 2 else "")
    return (
        f"; the images differ too: {shift['shifted']} of {shift['entries']} pixel values have another mean on "
        f"test (most at {where}: {shift['train_mean']:.2f} on training, {shift['test_mean']:.2f} on test; "
        f"mean brightness {shift['brightness'][0]:.2f} against {shift['brightness'][1]:.2f})"
    )


@RULES.register("test_differs", order=58)
def test_differs(facts: Facts, found: list[Finding]) -> Finding | None:
    """Test far below validation, over all or for some classes: the test split is not drawn (or labelled)
    like the training and validation splits."""
    if any(f.cause in LEAKS for f in found):
        return None
    gap, classes = _split_gap(facts), _class_gaps(facts)
    fixes = [
        "compare the two splits with the same checkpoint: convcoach eval --checkpoint RUN --split val, "
        "then --split test (confusion.png shows where they part)",
        "check that the test images come from the same source, size and preprocessing as training",
        "look at the test split's confident mistakes (mistakes.png): wrong labels show up there",
    ]
    few = classes and len(classes) <= len(facts.test_per_class or {}) / 2  # named one by one: more telling
    mix = _class_mix(facts)
    if mix and not classes and _training_skewed(facts):
        return None  # the classes score alike on both splits; the training split is the one off balance
    if mix and not few:
        return Finding(
            "test_differs",
            "warn",
            "the test split's classes are drawn unlike the training split's",
            mix + _pixels(facts),
            [
                "draw the test split with the same classes and shares as training (a stratified split)",
                "judge the run by per-class accuracy: convcoach eval --checkpoint RUN (confusion.png)",
            ],
        )
    if gap is not None and gap < 0 and not few and not _rare_explain(facts):
        return Finding(
            "test_differs",
            "warn",
            "the test set differs from validation: its images are shifted or its labels wrong",
            f"test accuracy {_pct(facts.test_acc)} against {_pct(facts.best_val_acc)} on validation "
            f"({facts.test_count} and {facts.val_count} images; sampling noise explains at most a few points)"
            + _pixels(facts),
            fixes,
        )
    if not classes:
        return _marked(facts, fixes) if gap is None else None  # (a gap above 0 is label_noise's)
    names = [name for name, _, _ in classes]
    taken = facts.test_taken_for or {}
    listed = "; ".join(
        f"{name} {_pct(v)} on validation, {_pct(t)} on test"
        + (f" (taken for {taken[name][0]}: {_pct(taken[name][1])})" if name in taken else "")
        for name, v, t in classes
    )
    pairs = _swapped(facts, names)
    title = (
        "the test labels of " + ", ".join(f"{a} and {b}" for a, b in pairs) + " look exchanged against training's"
        if pairs
        else "some classes' test images differ from validation's: shifted, or labelled otherwise"
    )
    labels = f"check the labels of {', '.join(names)} in the test split against the training split's"
    shifted = bool(facts.pixel_shift and facts.pixel_shift["shifted"])
    return Finding(
        "test_differs",
        "warn",
        title,
        f"{listed}: the net that gets these classes right on validation misses them on test "
        f"(test accuracy {_pct(facts.test_acc)} overall)" + _pixels(facts),
        # labels first, unless the images themselves differ and no two classes look exchanged
        [fixes[1], labels, fixes[0]] if shifted and not pairs else [labels, *fixes[:2]],
    )


def _marked(facts: Facts, fixes: list[str]) -> Finding | None:
    """The test images differ from the training images while the accuracy does not (yet) show it: a mark
    only one split carries (a shortcut the net may learn), or a shift it happens to tolerate."""
    shift = facts.pixel_shift
    if not shift or not shift["shifted"] or facts.test_acc is None:
        return None
    measured = f"test accuracy {_pct(facts.test_acc)} against {_pct(facts.best_val_acc or 0)} on validation"
    if shift["shifted"] >= BROAD_SHIFT * shift["entries"]:  # the images as a whole: another source or processing
        return Finding(
            "test_differs",
            "warn",
            "the test images are drawn unlike the training images, though the accuracy holds so far",
            measured + _pixels(facts) + ": the test score measures other images than the net was trained on",
            fixes[1:2] + ["preprocess both splits the same way (the same camera, resizing, contrast and file format)"],
        )
    return Finding(
        "test_differs",
        "info",
        "the test images differ from the training images, though the accuracy does not show it",
        measured + _pixels(facts) + ": a mark only one split carries is a shortcut the net can learn",
        [
            f"look at the training images at row {shift['at'][0]}, column {shift['at'][1]}: a watermark, border "
            "or stamp there can give the class away",
            fixes[1],
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
    per_class, overall = facts.test_per_class or {}, facts.test_acc or 0.0
    if any(f.cause in ("class_imbalance", "test_differs") for f in found):
        return None  # the rare classes, or the test split's own, are the missed ones: that is the cause
    if any(f.cause == "underfitting" and f.severity != "info" for f in found):
        return None  # a net that underfits loses the hardest classes first: underfitting named them
    if not classes_judged(facts):
        return None  # a model near chance, or a handful of test images per class, cannot tell
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
