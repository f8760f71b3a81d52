"""Losses (the lectures' worked examples) and weight penalties."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from convcoach.errors import ConfigError
from convcoach.train.losses import LOSSES, as_probabilities, create_loss
from convcoach.train.regularizers import Penalty, parse_reg, penalized_parameters

# Lecture 003: the score matrix has one row per class (cat, car, frog) and one column per image.
# Here each row is one image's scores, i.e. the lecture's columns: images of a cat, a car and a frog.
LECTURE_SCORES = torch.tensor(
    [
        [3.2, 5.1, -1.7],  # cat image
        [1.3, 4.9, 2.0],  # car image
        [2.2, 2.5, -3.1],  # frog image
    ]
)
LECTURE_LABELS = torch.tensor([0, 1, 2])  # cat = 0, car = 1, frog = 2


def test_loss_registry_names():
    assert LOSSES.names() == ["cross_entropy", "hinge", "kl", "softmax", "svm"]


def test_svm_per_image_losses_match_the_lecture_worked_example():
    svm = create_loss("svm")
    per_image = [svm(LECTURE_SCORES[i : i + 1], LECTURE_LABELS[i : i + 1]).item() for i in range(3)]
    # cat: max(0, 5.1-3.2+1) + max(0, -1.7-3.2+1) = 2.9; car: 0;
    # frog: max(0, 2.2+3.1+1) + max(0, 2.5+3.1+1) = 6.3 + 6.6 = 12.9
    # (the lecture text prints 5.3 + 5.6 = 10.9 and a mean of 4.6: an arithmetic slip; 12.9 / 5.27 are right)
    assert per_image == pytest.approx([2.9, 0.0, 12.9], abs=1e-5)


def test_svm_full_loss_is_the_mean_over_images():
    assert create_loss("svm")(LECTURE_SCORES, LECTURE_LABELS).item() == pytest.approx((2.9 + 0 + 12.9) / 3, abs=1e-5)
    assert create_loss("svm")(LECTURE_SCORES, LECTURE_LABELS).item() == pytest.approx(5.27, abs=0.005)


def test_hinge_is_an_alias_of_svm():
    assert create_loss("hinge")(LECTURE_SCORES, LECTURE_LABELS).item() == pytest.approx(5.2667, abs=1e-4)


def test_softmax_loss_of_the_cat_image_is_minus_log_its_probability():
    # p(cat) = e^3.2 / (e^3.2 + e^5.1 + e^-1.7) = 0.13, L = -ln 0.13 = 2.04
    loss = create_loss("softmax")(LECTURE_SCORES[:1], LECTURE_LABELS[:1]).item()
    expected = -math.log(math.exp(3.2) / (math.exp(3.2) + math.exp(5.1) + math.exp(-1.7)))
    assert loss == pytest.approx(expected, rel=1e-5)
    assert loss == pytest.approx(2.04, abs=0.005)


def test_at_tiny_weights_cross_entropy_is_log_c_and_svm_is_c_minus_1():
    # the lectures' sanity check: all scores ~0 at initialization
    logits, labels = torch.zeros(4, 10), torch.tensor([0, 3, 7, 9])
    assert create_loss("cross_entropy")(logits, labels).item() == pytest.approx(math.log(10), rel=1e-6)
    assert create_loss("svm")(logits, labels).item() == pytest.approx(9.0)


def test_label_smoothing_equals_the_manual_formula():
    torch.manual_seed(0)
    logits, labels, eps = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 1]), 0.1
    target = F.one_hot(labels, 4).float() * (1 - eps) + eps / 4
    manual = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    assert create_loss("cross_entropy", label_smoothing=eps)(logits, labels).item() == pytest.approx(
        manual.item(), rel=1e-6
    )


def test_label_smoothing_is_applied_to_soft_targets_too():
    torch.manual_seed(0)
    logits, labels = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 1])
    loss = create_loss("cross_entropy", label_smoothing=0.2)
    assert loss(logits, F.one_hot(labels, 4).float()).item() == pytest.approx(loss(logits, labels).item(), rel=1e-6)


def test_as_probabilities_smooths_one_hot():
    probs = as_probabilities(torch.tensor([2]), 4, smoothing=0.2)
    assert probs[0].tolist() == pytest.approx([0.05, 0.05, 0.85, 0.05])
    assert probs.sum().item() == pytest.approx(1.0)


def test_soft_target_cross_entropy_with_one_hot_equals_index_cross_entropy():
    torch.manual_seed(1)
    logits, labels = torch.randn(6, 5), torch.tensor([4, 0, 1, 1, 3, 2])
    loss = create_loss("cross_entropy")
    assert loss(logits, F.one_hot(labels, 5).float()).item() == pytest.approx(loss(logits, labels).item(), rel=1e-6)


def test_soft_target_cross_entropy_is_the_expected_log_loss():
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    target = torch.tensor([[0.5, 0.5, 0.0]])
    log_p = F.log_softmax(logits, dim=1)[0]
    assert create_loss("cross_entropy")(logits, target).item() == pytest.approx(
        -(0.5 * log_p[0] + 0.5 * log_p[1]).item()
    )


def test_kl_on_one_hot_targets_equals_cross_entropy():
    torch.manual_seed(2)
    logits, labels = torch.randn(6, 5), torch.tensor([4, 0, 1, 1, 3, 2])
    ce = create_loss("cross_entropy")(logits, labels).item()
    assert create_loss("kl")(logits, labels).item() == pytest.approx(ce, rel=1e-6)
    assert create_loss("kl")(logits, F.one_hot(labels, 5).float()).item() == pytest.approx(ce, rel=1e-6)


def test_kl_is_zero_when_the_target_is_the_models_softmax():
    torch.manual_seed(3)
    logits = torch.randn(4, 6)
    assert create_loss("kl")(logits, F.softmax(logits, dim=1)).item() == pytest.approx(0.0, abs=1e-6)


def test_kl_is_cross_entropy_minus_the_target_entropy():
    torch.manual_seed(4)
    logits, target = torch.randn(3, 4), F.softmax(torch.randn(3, 4), dim=1)
    entropy = -(target * target.log()).sum(dim=1).mean().item()
    ce = create_loss("cross_entropy")(logits, target).item()
    assert create_loss("kl")(logits, target).item() == pytest.approx(ce - entropy, rel=1e-5)


def test_svm_with_soft_targets_uses_their_argmax():
    soft = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.0, 0.3, 0.7]])
    assert create_loss("svm")(LECTURE_SCORES, soft).item() == pytest.approx(
        create_loss("svm")(LECTURE_SCORES, LECTURE_LABELS).item()
    )


def test_losses_compute_in_float32_for_half_logits():
    loss = create_loss("cross_entropy")(torch.zeros(2, 10, dtype=torch.bfloat16), torch.tensor([0, 1]))
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(math.log(10), rel=1e-6)


def test_unknown_loss_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown loss 'smv'.*known: cross_entropy, hinge, kl, softmax, svm"):
        create_loss("smv")


# ---- regularizers ---------------------------------------------------------------------------


def _known_linear() -> nn.Linear:
    layer = nn.Linear(3, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0, 3.0]]))  # sum w^2 = 14, sum |w| = 6
        layer.bias.fill_(10.0)  # never penalized by default
    return layer


def test_l2_penalty_is_lambda_times_sum_of_squares():
    penalty = parse_reg("l2:0.1")
    assert penalty == Penalty("l2", 0.1, 1.0)
    assert penalty(penalized_parameters(_known_linear())).item() == pytest.approx(0.1 * 14)


def test_l1_penalty_is_lambda_times_sum_of_abs():
    assert parse_reg("l1:0.5")(penalized_parameters(_known_linear())).item() == pytest.approx(0.5 * 6)


def test_elastic_penalty_is_beta_l2_plus_l1():
    params = penalized_parameters(_known_linear())
    assert parse_reg("elastic:0.1")(params).item() == pytest.approx(0.1 * (14 + 6))
    assert parse_reg("elastic:0.1:2")(params).item() == pytest.approx(0.1 * (2 * 14 + 6))


def test_penalty_sums_over_all_parameters():
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])
    assert parse_reg("l2:1")([a, b]).item() == pytest.approx(1 + 4 + 9)


def test_penalty_has_a_gradient_of_2_lambda_w_for_l2():
    layer = _known_linear()
    parse_reg("l2:0.1")(penalized_parameters(layer)).backward()
    assert layer.weight.grad[0].tolist() == pytest.approx([0.2, -0.4, 0.6])


def test_penalized_parameters_are_conv_and_linear_weights_only():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 3), nn.LayerNorm(3))
    chosen = penalized_parameters(model)
    assert [id(p) for p in chosen] == [id(model[0].weight), id(model[3].weight)]


def test_include_all_penalizes_biases_and_norm_parameters():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 3))
    chosen = penalized_parameters(model, include_all=True)
    assert len(chosen) == 6
    assert {id(p) for p in chosen} == {id(p) for p in model.parameters()}


def test_frozen_parameters_are_not_penalized():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model[0].weight.requires_grad_(False)
    assert [id(p) for p in penalized_parameters(model)] == [id(model[1].weight)]


@pytest.mark.parametrize("spec", [None, "", "none", "None"])
def test_no_reg_is_none(spec):
    assert parse_reg(spec) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("l3:1", r"reg 'l3:1': expected l1:LAMBDA, l2:LAMBDA or elastic:LAMBDA\[:BETA\]"),
        ("l2", r"reg 'l2': expected"),
        ("l2:abc", r"reg 'l2:abc': 'abc' is not a number"),
        ("l2:-1", r"reg 'l2:-1': lambda must be >= 0"),
    ],
)
def test_bad_reg_spec_is_a_config_error(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_reg(spec)
