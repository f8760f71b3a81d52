"""convcoach's Conv2d: the matmul weight gradient for small bf16 maps on CPU, and where it applies."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from convcoach import TrainConfig
from convcoach.models import conv
from convcoach.models.conv import Conv2d, weight_grad
from convcoach.models.fuse import foldable_pairs
from convcoach.models.spec import build_model, model_spec


@pytest.mark.parametrize("stride", [1, 2])
def test_weight_grad_equals_autograds_conv_weight_gradient(stride):
    torch.manual_seed(0)
    x = torch.randn(3, 5, 7, 7, dtype=torch.float64)
    weight = torch.randn(4, 5, 3, 3, dtype=torch.float64, requires_grad=True)
    y = F.conv2d(x, weight, stride=stride, padding=1)
    grad = torch.randn_like(y)
    (expected,) = torch.autograd.grad(y, weight, grad)
    assert torch.allclose(weight_grad(x, grad, stride), expected, atol=1e-12)


def test_weight_grad_on_a_worked_example():
    # one 2x2 image of ones, one channel, dY = ones: dW[kh, kw] counts the output pixels whose shifted
    # window puts an input pixel at (kh, kw): 1 at the corners, 2 on the edges, 4 at the centre
    x = torch.ones(1, 1, 2, 2)
    grad = torch.ones(1, 1, 2, 2)
    expected = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
    assert torch.equal(weight_grad(x, grad, 1)[0, 0], expected)


def _train_step(layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    (y.float() ** 2).sum().backward()
    return y.float(), x.grad, layer.weight.grad, layer.bias.grad


def test_small_wide_bf16_maps_match_nn_conv2d_to_bf16_rounding(monkeypatch):
    calls = []
    original = conv.weight_grad
    monkeypatch.setattr(conv, "weight_grad", lambda *args: calls.append(1) or original(*args))
    torch.manual_seed(0)
    ours = Conv2d(32, 128, 3, 2, 1, bias=True)
    reference = nn.Conv2d(32, 128, 3, 2, 1, bias=True)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(16, 32, 7, 7).contiguous(memory_format=torch.channels_last)
    got, expected = _train_step(ours, x), _train_step(reference, x)
    assert calls == [1]  # the 4x4, 128-channel output took the matmul path
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])  # forward and dX: oneDNN's own
    for a, b in zip(got[2:], expected[2:]):
        assert a.dtype == torch.float32  # the fp32 parameter's gradient, as under plain autocast
        assert (a - b).norm() / b.norm() < 1e-3


@pytest.mark.parametrize(
    "case, expected",
    [
        ({}, True),
        ({"size": 8}, False),  # an 8x8 output: oneDNN's own gradient is faster
        ({"out_channels": 64}, False),  # the default net's width: nothing to gain
        ({"eval": True}, False),
        ({"precision": "fp32"}, False),
        ({"no_grad": True}, False),
        ({"kernel": 1}, False),
    ],
)
def test_the_matmul_path_is_taken_only_for_small_wide_bf16_training_maps(case, expected):
    layer = Conv2d(16, case.get("out_channels", 128), case.get("kernel", 3), 1, case.get("kernel", 3) // 2)
    layer.train(not case.get("eval", False))
    x = torch.randn(2, 16, case.get("size", 4), case.get("size", 4))
    enabled = case.get("precision", "bf16") == "bf16"
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled), torch.set_grad_enabled(not case.get("no_grad")):
        assert conv._takes_matmul_path(layer, x) is expected


def test_a_wide_resnet_folds_batchnorm_and_traces_with_its_own_conv_layers():
    model = build_model(model_spec(TrainConfig(depth=14, width=48), (1, 28, 28), 10)).eval()
    assert sum(isinstance(m, Conv2d) for m in model.modules()) == 12
    assert len(foldable_pairs(model)) == 15  # every conv -> BN pair, the block convs included
    x = torch.randn(2, 1, 28, 28)
    traced = torch.jit.trace(model, x)
    assert torch.allclose(traced(x), model(x))
