"""Weight initialization: the schemes' statistics (the lectures' 6 x 4096 tanh tables are in
tests/coach/test_coach_stats.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from convcoach.errors import ConfigError
from convcoach.models import create_model
from convcoach.models.init import INITS, check_init, initialize, resolve_init


def _init(module: nn.Module, spec: str, act: str = "relu", seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    initialize(module, spec, act)
    return module


def test_kaiming_conv_std_is_sqrt_2_over_fan_in():
    conv = _init(nn.Conv2d(16, 32, 3), "kaiming").weight  # fan_in = 3*3*16
    assert conv.std().item() == pytest.approx(math.sqrt(2 / (9 * 16)), rel=0.05)
    assert conv.mean().item() == pytest.approx(0.0, abs=0.01)


def test_kaiming_for_tanh_uses_the_tanh_gain():
    weight = _init(nn.Linear(1024, 512), "kaiming", act="tanh").weight
    assert weight.std().item() == pytest.approx((5 / 3) / math.sqrt(1024), rel=0.02)


def test_xavier_square_linear_std_is_one_over_sqrt_din():
    weight = _init(nn.Linear(4096, 4096), "xavier", act="tanh").weight
    assert weight.std().item() == pytest.approx(1 / 64, rel=0.01)


# Linear(256 -> 128): fan_in 256, fan_out 128, so fan-in and fan-average schemes differ
FAN_IN, FAN_OUT = 256, 128


@pytest.mark.parametrize(("act", "gain"), [("relu", math.sqrt(2)), ("tanh", 5 / 3)])
def test_kaiming_uniform_is_uniform_with_std_gain_over_sqrt_fan_in(act, gain):
    weight = _init(nn.Linear(FAN_IN, FAN_OUT), "kaiming_uniform", act=act).weight
    bound = gain * math.sqrt(3 / FAN_IN)  # relu: sqrt(6 / 256) = 0.1531, std sqrt(2 / 256) = 0.0884
    assert weight.abs().max().item() <= bound
    assert weight.abs().max().item() >= 0.99 * bound  # uniform: fills its range, unlike a Gaussian of that std
    assert weight.std().item() == pytest.approx(gain / math.sqrt(FAN_IN), rel=0.01)
    assert weight.mean().item() == pytest.approx(0.0, abs=0.002)


def test_kaiming_uniform_conv_fan_in_is_kernel_area_times_in_channels():
    weight = _init(nn.Conv2d(16, 32, 3), "kaiming_uniform").weight  # fan_in = 3*3*16 = 144
    assert weight.abs().max().item() == pytest.approx(math.sqrt(6 / 144), rel=0.01)
    assert weight.abs().max().item() <= math.sqrt(6 / 144)


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_xavier_uniform_bound_is_sqrt_6_over_fan_in_plus_fan_out_for_any_activation(act):
    weight = _init(nn.Linear(FAN_IN, FAN_OUT), "xavier_uniform", act=act).weight
    bound = math.sqrt(6 / (FAN_IN + FAN_OUT))  # 0.125; std sqrt(2 / 384) = 0.0722
    assert bound * 0.99 <= weight.abs().max().item() <= bound
    assert weight.std().item() == pytest.approx(math.sqrt(2 / (FAN_IN + FAN_OUT)), rel=0.01)


def test_xavier_uniform_square_layer_bound_is_sqrt_6_over_512():
    weight = _init(nn.Linear(256, 256), "xavier_uniform").weight
    assert math.sqrt(6 / 512) * 0.99 <= weight.abs().max().item() <= math.sqrt(6 / 512)


@pytest.mark.parametrize(("act", "gain"), [("relu", math.sqrt(2)), ("tanh", 5 / 3), ("sigmoid", 1.0)])
def test_orthogonal_rows_are_orthogonal_with_the_activation_gain(act, gain):
    weight = _init(nn.Linear(FAN_IN, FAN_OUT), "orthogonal", act=act).weight
    assert torch.allclose(weight @ weight.T, gain**2 * torch.eye(FAN_OUT), atol=1e-5)  # W W^T = gain^2 I


def test_orthogonal_square_layer_is_gain_times_an_orthogonal_matrix():
    weight = _init(nn.Linear(256, 256), "orthogonal", act="relu").weight
    assert torch.allclose(weight @ weight.T, 2 * torch.eye(256), atol=1e-5)
    assert torch.allclose(weight.T @ weight, 2 * torch.eye(256), atol=1e-5)
    assert weight.std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.01)  # gain / sqrt(n), like He


@pytest.mark.parametrize(
    ("alias", "name"), [("he", "kaiming"), ("kaiming_normal", "kaiming"), ("xavier_normal", "xavier")]
)
def test_init_aliases_draw_the_same_weights(alias, name):
    assert torch.equal(_init(nn.Linear(64, 32), alias).weight, _init(nn.Linear(64, 32), name).weight)


def test_every_init_scheme_has_a_numeric_test():
    tested = {
        "normal",
        "xavier",
        "xavier_normal",
        "xavier_uniform",
        "kaiming",
        "he",
        "kaiming_normal",
        "kaiming_uniform",
        "orthogonal",
        "zeros",
        "constant",
        "lsuv",
        "default",
    }
    assert set(INITS.names()) == tested


def test_normal_spec_sets_the_std():
    assert _init(nn.Linear(1000, 500), "normal:0.01").weight.std().item() == pytest.approx(0.01, rel=0.02)
    assert _init(nn.Linear(1000, 500), "normal").weight.std().item() == pytest.approx(0.01, rel=0.02)
    assert _init(nn.Linear(1000, 500), "normal:0.05").weight.std().item() == pytest.approx(0.05, rel=0.02)


def test_initialize_zeroes_every_bias():
    model = _init(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 2)), "kaiming")
    assert all(torch.count_nonzero(m.bias) == 0 for m in model if hasattr(m, "bias"))


def test_zeros_gives_all_zero_weights_and_biases():
    model = _init(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 2)), "zeros")
    assert all(torch.count_nonzero(p) == 0 for p in model.parameters())


def test_constant_spec_fills_the_value():
    weight = _init(nn.Linear(3, 2), "constant:0.5").weight
    assert torch.equal(weight, torch.full((2, 3), 0.5))


def test_default_keeps_torchs_own_init():
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    before = layer.weight.clone(), layer.bias.clone()
    assert initialize(layer, "default") == "default"
    assert torch.equal(layer.weight, before[0]) and torch.equal(layer.bias, before[1])


@pytest.mark.parametrize(
    ("act", "expected"),
    [("relu", "kaiming"), ("leaky_relu", "kaiming"), ("gelu", "kaiming"), ("tanh", "xavier"), ("sigmoid", "xavier")],
)
def test_auto_resolves_to_kaiming_for_relu_like_and_xavier_for_saturating(act, expected):
    assert resolve_init("auto", act) == expected
    assert initialize(nn.Linear(2, 2), "auto", act) == expected


def test_explicit_init_is_not_rewritten():
    assert resolve_init("normal:0.01", "relu") == "normal:0.01"


def test_auto_init_on_a_resnet_conv_is_he_normal():
    model = _init(create_model("resnet", (3, 32, 32), 10, width=16), "auto", act="relu")
    conv = model.blocks[0].conv2.weight  # 16 -> 16, 3x3
    assert conv.std().item() == pytest.approx(math.sqrt(2 / (9 * 16)), rel=0.05)


def test_unknown_init_is_an_error_listing_the_schemes():
    with pytest.raises(ConfigError, match=r"unknown init 'kaimng'.*known:.*kaiming.*xavier"):
        check_init("kaimng")


def test_init_argument_must_be_a_number():
    with pytest.raises(ConfigError, match=r"init 'normal:abc': 'abc' is not a number"):
        check_init("normal:abc")


def test_zero_init_residual_zeroes_only_the_last_norm_of_each_block():
    model = create_model("resnet", (3, 32, 32), 10, depth=14, width=4)
    initialize(model, "kaiming", zero_init_residual=True)
    for block in model.blocks:
        assert torch.count_nonzero(block.norm2.weight) == 0
        assert torch.equal(block.norm1.weight, torch.ones_like(block.norm1.weight))
    assert torch.equal(model.stem[2].weight, torch.ones_like(model.stem[2].weight))  # conv, max-pool, norm


def test_zero_init_residual_makes_each_block_start_as_its_shortcut():
    model = create_model("resnet", (3, 32, 32), 10, depth=8, width=4).eval()
    initialize(model, "kaiming", zero_init_residual=True)
    block = model.blocks[0]  # 4 -> 4 channels, identity shortcut
    x = torch.rand(2, 4, 8, 8)
    assert torch.equal(block(x), torch.relu(x))


def test_without_zero_init_residual_the_last_norm_keeps_unit_weights():
    model = create_model("resnet", (3, 32, 32), 10, width=4)
    initialize(model, "kaiming", zero_init_residual=False)
    assert all(torch.equal(b.norm2.weight, torch.ones_like(b.norm2.weight)) for b in model.blocks)


def _layer_output_variances(model: nn.Module, sample: torch.Tensor) -> list[float]:
    """Each conv/linear output's variance, taken inside the hook (before any in-place activation)."""
    variances: list[float] = []
    handles = [
        m.register_forward_hook(lambda mod, inp, out: variances.append(out.var().item()))
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    with torch.no_grad():
        model.eval()(sample)
    for handle in handles:
        handle.remove()
    return variances


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("mlp", {"depth": 3, "width": 64, "activation_name": "relu", "norm_spec": "none"}),
        ("mlp", {"depth": 3, "width": 64, "activation_name": "tanh", "norm_spec": "none"}),
        ("cnn", {"depth": 2, "width": 8, "fc_width": 16, "norm_spec": "none"}),
    ],
)
def test_lsuv_gives_unit_output_variance_at_every_layer(name, options):
    torch.manual_seed(0)
    model = create_model(name, (1, 16, 16), 10, **options)
    sample = torch.randn(32, 1, 16, 16)
    assert initialize(model, "lsuv", options.get("activation_name", "relu"), sample=sample) == "lsuv"
    variances = _layer_output_variances(model, sample)
    assert len(variances) == sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
    assert variances == pytest.approx([1.0] * len(variances), abs=0.1)


def test_lsuv_needs_a_data_batch():
    with pytest.raises(ConfigError, match="lsuv.*needs a data batch"):
        initialize(nn.Linear(4, 2), "lsuv")
