"""--class-weights: sklearn's balanced rule on a worked example, the weighted loss by hand for hard,
smoothed and soft (mixup) targets, and the one-line errors from the API and the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import small_config

from convcoach import Trainer
from convcoach.cli import main
from convcoach.errors import ConfigError
from convcoach.train.class_weights import balanced_weights, class_weights_for
from convcoach.train.losses import create_loss

LOGITS = torch.tensor([[2.0, 0.0], [0.5, 1.5], [1.0, 1.0]])
WEIGHTS = torch.tensor([0.5, 5.0])


def _ce(row: torch.Tensor, target: list[float]) -> float:
    """-sum_c t_c log p_c for one row of LOGITS, written out."""
    log_norm = math.log(sum(math.exp(v) for v in row.tolist()))
    return -sum(t * (v - log_norm) for t, v in zip(target, row.tolist()))


def test_balanced_weights_follow_sklearn_on_the_worked_example():
    # n / (classes * count): 100 / (2 * 90) and 100 / (2 * 10)
    assert balanced_weights([90, 10]) == pytest.approx([0.5556, 5.0], abs=1e-4)
    assert balanced_weights([90, 10, 0]) == pytest.approx([0.5556, 5.0, 0.0], abs=1e-4)  # absent: over the present 2
    labels = torch.tensor([0] * 90 + [1] * 10)
    assert class_weights_for(["balanced"], labels, 2) == pytest.approx([100 / 180, 5.0])
    assert class_weights_for(["1", "3.5"], labels, 2) == [1.0, 3.5]
    assert class_weights_for(["none"], labels, 2) is None


def test_weighted_loss_of_hard_targets_is_the_weighted_mean_by_hand():
    labels = torch.tensor([0, 1, 1])
    per_sample = [_ce(LOGITS[i], [1.0 - y, float(y)]) for i, y in enumerate(labels.tolist())]
    expected = (0.5 * per_sample[0] + 5.0 * per_sample[1] + 5.0 * per_sample[2]) / (0.5 + 5.0 + 5.0)
    loss = create_loss("cross_entropy", class_weights=WEIGHTS)(LOGITS, labels).item()
    assert loss == pytest.approx(expected, rel=1e-6)
    assert loss == pytest.approx(F.cross_entropy(LOGITS, labels, weight=WEIGHTS).item(), rel=1e-6)  # torch's rule


def test_label_smoothing_changes_the_targets_not_the_weights():
    labels, eps = torch.tensor([0, 1, 1]), 0.2
    smoothed = [[1 - eps / 2, eps / 2] if y == 0 else [eps / 2, 1 - eps / 2] for y in labels.tolist()]
    per_sample = [_ce(LOGITS[i], smoothed[i]) for i in range(3)]
    expected = (0.5 * per_sample[0] + 5.0 * (per_sample[1] + per_sample[2])) / 10.5
    loss = create_loss("cross_entropy", label_smoothing=eps, class_weights=WEIGHTS)
    assert loss(LOGITS, labels).item() == pytest.approx(expected, rel=1e-6)
    assert loss(LOGITS, F.one_hot(labels, 2).float()).item() == pytest.approx(expected, rel=1e-6)  # same as one-hot


def test_a_mixed_target_weighs_the_mixture_of_its_classes_weights():
    # mixup's 0.7/0.3 blend of classes 0 and 1 weighs 0.7 * 0.5 + 0.3 * 5.0 = 1.85
    soft = torch.tensor([[0.7, 0.3], [0.0, 1.0], [0.5, 0.5]])
    weights = [0.7 * 0.5 + 0.3 * 5.0, 5.0, 0.5 * 0.5 + 0.5 * 5.0]
    per_sample = [_ce(LOGITS[i], soft[i].tolist()) for i in range(3)]
    expected = sum(w * loss for w, loss in zip(weights, per_sample)) / sum(weights)
    assert create_loss("cross_entropy", class_weights=WEIGHTS)(LOGITS, soft).item() == pytest.approx(expected, rel=1e-6)
    kl = create_loss("kl", class_weights=WEIGHTS)(LOGITS, soft).item()  # KL = cross-entropy - entropy(t), per sample
    entropy = [-sum(t * math.log(t) for t in row if t > 0) for row in soft.tolist()]
    expected_kl = sum(w * (loss - h) for w, loss, h in zip(weights, per_sample, entropy)) / sum(weights)
    assert kl == pytest.approx(expected_kl, rel=1e-5)


def test_unit_weights_leave_every_loss_unchanged():
    labels = torch.tensor([0, 1, 1])
    for name in ("cross_entropy", "svm", "kl"):
        plain = create_loss(name, 0.1)(LOGITS, labels).item()
        assert create_loss(name, 0.1, torch.ones(2))(LOGITS, labels).item() == pytest.approx(plain, rel=1e-6)


def test_a_batch_of_only_zero_weighted_classes_adds_nothing():
    loss = create_loss("cross_entropy", class_weights=torch.tensor([0.0, 1.0]))(LOGITS, torch.tensor([0, 0, 0]))
    assert loss.item() == 0.0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["1", "x"], r"^class_weights: '1,x' is not balanced, none or one weight per class such as 1,1,5$"),
        (["1", "-2"], r"^class_weights: '-2' is not a finite weight >= 0; give balanced"),
        (["nan", "1"], r"^class_weights: 'nan' is not a finite weight >= 0"),
        (["inf", "1"], r"^class_weights: 'inf' is not a finite weight >= 0"),
        (["0", "0"], r"^class_weights are all 0: no sample would count"),
        (["balanced", "2"], r"^class_weights: 'balanced,2' is not balanced, none or one weight per class"),
    ],
)
def test_bad_class_weights_are_one_line_errors(blobs_npz, tmp_path, value, message):
    with pytest.raises(ConfigError, match=message):
        small_config(blobs_npz, tmp_path / "run", class_weights=value).validate()


def test_a_weight_count_other_than_the_class_count_is_refused_before_training(blobs_npz, tmp_path):
    with pytest.raises(ConfigError, match=r"^class_weights: 2 weights given for 3 classes; give one per class or"):
        Trainer(small_config(blobs_npz, tmp_path / "run", class_weights=["1", "2"]))


@pytest.mark.parametrize(
    ("flag", "line"),
    [
        ("1,2", "convcoach: error: class_weights: 2 weights given for 3 classes; give one per class or balanced"),
        (
            "1,-1,2",
            "convcoach: error: class_weights: '-1' is not a finite weight >= 0; give balanced, none or one "
            "weight per class such as 1,1,5",
        ),
    ],
)
def test_cli_bad_class_weights_exit_2_with_one_line(blobs_npz, tmp_path, capsys, flag, line):
    args = ["train", "--data", f"npz:{blobs_npz}", "--out", str(tmp_path / "run"), "--epochs", "1", "--quiet"]
    assert main([*args, "--class-weights", flag]) == 2
    assert capsys.readouterr().err.strip() == line


def test_yaml_list_and_env_json_record_the_weights_used(blobs_npz, tmp_path, single_thread):
    config = tmp_path / "run.yaml"
    config.write_text(f"data: npz:{blobs_npz}\nclass_weights: [1, 2.5, 4]\nmixup: 0.4\nlabel_smoothing: 0.1\n")
    args = ["train", "--config", str(config), "--out", str(tmp_path / "run"), "--epochs", "1", "--quiet"]
    assert main([*args, "--model", "cnn", "--depth", "2", "--width", "8", "--no-report", "--batch-size", "32"]) == 0
    assert json.loads((tmp_path / "run" / "env.json").read_text())["class_weights"] == [1.0, 2.5, 4.0]
    balanced = Trainer(small_config(blobs_npz, tmp_path / "balanced", class_weights=["balanced"], epochs=1))
    counts = torch.bincount(balanced.data.train.labels).tolist()
    expected = [sum(counts) / (3 * count) for count in counts]
    assert json.loads((tmp_path / "balanced" / "env.json").read_text())["class_weights"] == pytest.approx(expected)
