"""The rules that read the test split: test unlike validation, noisy training labels, missed classes."""

from __future__ import annotations

import math

from convcoach.coach.diagnosis import RunRecord, diagnose

CLASSES = [f"c{i}" for i in range(10)]
EPOCHS = [(0.70, 0.72, 0.9), (0.85, 0.84, 0.5), (0.90, 0.86, 0.4)]


def _record(test_acc: float | None, per_class: dict[str, float] | None = None, val: int = 3000, test: int = 10000):
    losses = [0.3 + 2.0 * math.exp(-4 * i / 90) for i in range(90)]
    rows = [{"kind": "iter", "step": i + 1, "loss": loss, "lr": 0.1 * (1 - i / 90)} for i, loss in enumerate(losses)]
    rows += [
        {"kind": "epoch", "epoch": e, "train_acc": t, "val_acc": v, "val_loss": vl}
        for e, (t, v, vl) in enumerate(EPOCHS, start=1)
    ]
    summary = {
        "data": {"classes": CLASSES, "val": val, "test": test},
        "stop_reason": None,
        "test_accuracy": test_acc,
        "test_per_class_accuracy": per_class,
    }
    return RunRecord.from_rows(rows, summary)


def test_test_far_below_validation_is_a_test_set_that_differs():
    verdict = diagnose(_record(0.13))
    finding = next(f for f in verdict.findings if f.cause == "test_differs")
    assert not verdict.healthy and finding.severity == "warn"
    assert "test accuracy 13% against 86% on validation" in finding.evidence
    assert "label_noise" not in verdict.causes


def test_test_far_above_validation_reads_as_noisy_training_labels():
    verdict = diagnose(_record(0.97))
    assert "label_noise" in verdict.causes
    finding = next(f for f in verdict.findings if f.cause == "label_noise")
    assert "test accuracy 97% against 86% on validation" in finding.evidence
    assert any("--label-smoothing" in fix for fix in finding.fixes)


def test_a_gap_within_sampling_noise_names_nothing():
    assert {"test_differs", "label_noise"}.isdisjoint(diagnose(_record(0.85)).causes)
    # 30 validation images: a 12-point gap is within 4 standard errors
    assert {"test_differs", "label_noise"}.isdisjoint(diagnose(_record(0.74, val=30)).causes)


def test_classes_never_predicted_are_named_with_their_accuracy():
    per_class = {name: 0.95 for name in CLASSES} | {"c3": 0.02, "c7": 0.36}
    verdict = diagnose(_record(0.78, per_class))
    finding = next(f for f in verdict.findings if f.cause == "classes_missed")
    assert finding.title == "classes the model never predicts right"
    assert finding.evidence.startswith("test accuracy per class: c3 2%, c7 36%, against 78% overall")


def test_even_classes_and_runs_without_a_test_split_are_healthy():
    assert diagnose(_record(0.85, {name: 0.85 for name in CLASSES})).healthy
    assert diagnose(_record(None)).healthy  # tuning trials never read the test split


def _by_class(val_acc: dict[str, float], test_acc: dict[str, float], taken: dict, shift: dict | None = None):
    record = _record(sum(test_acc.values()) / 10, test_acc, val=150, test=1000)
    record.summary.update(
        val_per_class_accuracy=val_acc,
        val_class_counts=[15] * 10,
        test_class_counts=[100] * 10,
        test_taken_for=taken,
    )
    record.summary["data"]["pixel_shift"] = shift
    return record


MATCHING = {"shifted": 0, "entries": 784, "max_z": 2.2, "at": [3, 4], "train_mean": 0.3, "test_mean": 0.3}


def test_two_classes_taken_for_each_other_on_test_only_read_as_exchanged_test_labels():
    # validation gets c1 and c8 right; on test each is taken for the other: a swap, not a weak class
    val = {name: 0.85 for name in CLASSES} | {"c1": 14 / 15, "c8": 1.0}
    test = {name: 0.82 for name in CLASSES} | {"c1": 0.0, "c8": 0.01}
    taken = {"c1": ["c8", 0.96], "c8": ["c1", 0.94], "c6": ["c0", 0.1]}
    verdict = diagnose(_by_class(val, test, taken, MATCHING | {"brightness": [0.3, 0.3]}))
    top = verdict.findings[0]
    assert (top.cause, top.severity) == ("test_differs", "warn")
    assert top.title == "the test labels of c1 and c8 look exchanged against training's"
    assert top.evidence.startswith("c1 93% on validation, 0% on test (taken for c8: 96%); c8 100% on validation")
    assert "match the training images pixel by pixel" in top.evidence and "at most 2.2 standard errors" in top.evidence
    assert top.fixes[0] == "check the labels of c1, c8 in the test split against the training split's"
    assert "classes_missed" not in verdict.causes  # the split's own labels miss them, not the model


def test_a_class_right_on_5_of_5_validation_images_is_not_read_as_a_split_difference():
    # 5/5 on validation is weak evidence ((5+1)/7 for the spread): 50% on test is within 4 standard errors
    record = _by_class({n: 0.9 for n in CLASSES}, {n: 0.9 for n in CLASSES} | {"c6": 0.5}, {})
    record.summary["val_class_counts"] = [5] * 10
    record.summary["val_per_class_accuracy"]["c6"] = 1.0
    assert "test_differs" not in diagnose(record).causes


def _shifted(shifted: int, brightness: list[float]):
    shift = {"shifted": shifted, "entries": 784, "max_z": 18.9, "at": [1, 2], "train_mean": 0.11, "test_mean": 0.0}
    even = {name: 0.85 for name in CLASSES}
    return diagnose(_by_class(even, even, {}, shift | {"brightness": brightness}))


def test_a_mark_only_the_training_images_carry_is_a_note_when_the_accuracy_holds():
    verdict = _shifted(8, [0.29, 0.28])
    finding = next(f for f in verdict.findings if f.cause == "test_differs")
    assert finding.severity == "info" and verdict.healthy
    assert (
        "8 of 784 pixel values have another mean on test (most at row 1, column 2: 0.11 on training, "
        "0.00 on test; mean brightness 0.29 against 0.28)" in finding.evidence
    )


def _near(test_acc: float = 0.87, **near):
    record = _record(test_acc, val=150, test=1000)
    base = {"test_near": 0.05, "val_near": 0.05, "test_count": 1000, "val_count": 150, "val_line": 0.985}
    record.summary["data"].update(near_copies=base | {"val_median": 0.957, "test_q99": 0.992} | near)
    return diagnose(record)


def test_test_images_closer_to_training_than_validation_is_are_near_copies_leaked():
    finding = next(f for f in _near(test_near=0.25).findings if f.cause == "split_leakage")
    assert finding.severity == "warn" and finding.title.startswith("test images are near-copies of training images")
    assert finding.evidence.startswith(
        "25% of 1000 test images sit closer to a training image than 95% of validation images do "
        "(fingerprint cosine above 0.985; about 5% when the splits are drawn alike)"
    )
    # 99% on test against 86% on validation: the copies, not noisy labels, lift the test score
    assert "label_noise" in _near(0.99).causes and "label_noise" not in _near(0.99, test_near=0.25).causes
    assert "split_leakage" not in _near(test_near=0.07).causes  # Fashion-MNIST's own splits: 7%


def test_clean_test_images_closer_than_a_noised_validation_split_are_not_near_copies():
    # training (and so validation) noised: validation sits far from training (median 0.884), clean test
    # images closer (25% above validation's 95th percentile 0.947), but none at copy level (99th: 0.974)
    verdict = _near(0.87, test_near=0.251, val_line=0.947, val_median=0.884, test_q99=0.974)
    assert "split_leakage" not in verdict.causes
    assert "split_leakage" in _near(0.87, test_near=0.251, val_line=0.947, val_median=0.884, test_q99=0.999).causes


def test_validation_at_copy_level_is_a_training_split_of_near_duplicates_and_a_shifted_test_is_not():
    verdict = _near(val_near=1.0, val_median=0.998, test_q99=0.984)
    finding = next(f for f in verdict.findings if f.cause == "duplicated_images")
    assert finding.title == "the training set repeats near-copies of its images: validation overstates"
    assert "their median fingerprint cosine 0.998 is above the test images' 99th percentile (0.984)" in (
        finding.evidence
    )
    # an inverted test split leaves validation the closer one too, at its natural level
    assert "duplicated_images" not in _near(val_near=1.0, val_median=0.957, test_q99=0.38).causes


def test_a_test_split_of_four_classes_is_drawn_unlike_training_whatever_its_accuracy():
    val = {name: 0.9 for name in CLASSES} | {"c0": 0.75, "c2": 0.57, "c4": 0.8, "c6": 0.47}
    test = {name: 0.0 for name in CLASSES} | {"c0": 0.88, "c2": 0.79, "c4": 0.83, "c6": 0.63}
    record = _by_class(val, test, {})
    record.summary.update(test_class_counts=[100, 0, 114, 0, 86, 0, 96, 0, 0, 0], test_accuracy=0.78)
    record.summary["data"]["train_class_counts"] = [200] * 10
    finding = next(f for f in diagnose(record).findings if f.cause == "test_differs")
    assert (
        finding.severity == "warn" and finding.title == "the test split's classes are drawn unlike the training split's"
    )
    assert finding.evidence.startswith(
        "the test split holds 4 of the 10 classes (none of c1, c3, c5, c7, c8, c9); its class shares are 60% apart "
        "from the training split's (total variation); validation's per-class accuracy weighted by the test's class "
        "shares gives 64%, test 78%"
    )
    # a class rare in training and absent from a small test draw is the imbalance's, not the split's
    record.summary.update(test_class_counts=[100] * 9 + [0], test_per_class_accuracy=val)
    record.summary["data"]["train_class_counts"] = [200] * 9 + [3]
    assert "test_differs" not in diagnose(record).causes


def test_test_images_shifted_as_a_whole_warn_even_when_the_accuracy_holds():
    verdict = _shifted(614, [0.43, 0.28])  # 78% of the pixel values moved: another source or processing
    finding = next(f for f in verdict.findings if f.cause == "test_differs")
    assert finding.severity == "warn" and not verdict.healthy
    assert finding.title == "the test images are drawn unlike the training images, though the accuracy holds so far"
    assert "614 of 784 pixel values have another mean on test" in finding.evidence
    assert "mean brightness 0.43 against 0.28" in finding.evidence


def test_a_test_gap_from_classes_rare_in_training_is_the_imbalance_not_a_test_split_that_differs():
    # c3 and c4 have 6 training images against 250 (so ~0 on validation); the balanced test set holds
    # 100 of each and the net misses them: 74% on test against 89% on validation
    val = {name: 0.89 for name in CLASSES} | {"c3": 0.0, "c4": 0.0}
    test = {name: 0.89 for name in CLASSES} | {"c3": 0.05, "c4": 0.05}
    record = _by_class(val, test, {})
    record.summary.update(test_accuracy=0.722, val_class_counts=[75] * 3 + [0, 0] + [75] * 5)
    record.summary["data"].update(val=600, train_class_counts=[250] * 3 + [6, 6] + [250] * 5)
    verdict = diagnose(record)
    assert verdict.findings[0].cause == "class_imbalance"
    assert "c3 6 (5% right on test), c4 6 (5% right on test)" in verdict.findings[0].evidence
    assert "test_differs" not in verdict.causes
    # the same rare classes, and the common classes 20 points worse on test too: the split differs as well
    record.summary["test_per_class_accuracy"] = {name: 0.69 for name in CLASSES} | {"c3": 0.05, "c4": 0.05}
    record.summary["test_accuracy"] = 0.562
    assert "test_differs" in diagnose(record).causes


def test_classes_missed_on_test_whose_images_differ_put_the_images_first_and_the_labels_second():
    val = {name: 0.9 for name in CLASSES}
    test = val | {"c1": 0.19, "c5": 0.04}
    taken = {"c1": ["c3", 0.69], "c5": ["c7", 0.47]}  # not taken for each other: no exchanged pair
    shift = {"shifted": 72, "entries": 784, "max_z": 9.1, "at": [0, 19], "train_mean": 0.04, "test_mean": 0.12}
    top = diagnose(_by_class(val, test, taken, shift | {"brightness": [0.28, 0.28]})).findings[0]
    assert top.cause == "test_differs" and "the images differ too: 72 of 784 pixel values" in top.evidence
    assert top.fixes[0].startswith("check that the test images come from the same source")
    assert top.fixes[1] == "check the labels of c1, c5 in the test split against the training split's"
