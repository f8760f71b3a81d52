"""Weight initialization: the schemes' statistics, and the lectures' activation-statistics experiment."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from convcoach.errors import ConfigError
from convcoach.models import create_model
from convcoach.models.init import check_init, initialize, resolve_init

# lecture 004, "Weight Initialization: Activation Statistics": a 6-layer, 4096-wide tanh net on randn(16, 4096)
LECTURE_SMALL_NORMAL_STDS = [0.49, 0.29, 0.18, 0.11, 0.07, 0.05]  # W = 0.01 * randn
LECTURE_XAVIER_STDS = [0.63, 0.49, 0.41, 0.36, 0.32, 0.30]  # W = randn / sqrt(Din)


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


@pytest.mark.parametrize(("act", "expected"), [("relu", "kaiming"), ("leaky_relu", "kaiming"), ("gelu", "kaiming"), ("tanh", "xavier"), ("sigmoid", "xavier")])
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
    handles = [m.register_forward_hook(lambda mod, inp, out: variances.append(out.var().item()))
               for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(sample)
    for handle in handles:
        handle.remove()
    return variances


@pytest.mark.parametrize(("name", "options"), [
    ("mlp", {"depth": 3, "width": 64, "activation_name": "relu", "norm_spec": "none"}),
    ("mlp", {"depth": 3, "width": 64, "activation_name": "tanh", "norm_spec": "none"}),
    ("cnn", {"depth": 2, "width": 8, "fc_width": 16, "norm_spec": "none"}),
])
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


@pytest.fixture(scope="module")
def lecture_net() -> nn.Module:
    """The lecture's 6-layer, 4096-wide tanh net without biases (plus the 10-way classifier, unused here)."""
    with torch.device("meta"):
        model = create_model("mlp", (4096, 1, 1), 10, depth=6, width=4096, activation_name="tanh", bias=False)
    return model.to_empty(device="cpu")  # skip torch's default init: every test initializes it


def _tanh_stds(model: nn.Module, spec: str) -> list[float]:
    torch.manual_seed(0)
    initialize(model, spec, "tanh")
    stds: list[float] = []
    handles = [m.register_forward_hook(lambda mod, inp, out: stds.append(out.std().item())) for m in model.modules() if isinstance(m, nn.Tanh)]
    with torch.no_grad():
        model(torch.randn(16, 4096, 1, 1))
    for handle in handles:
        handle.remove()
    return stds


def test_small_normal_init_activations_shrink_to_zero_layer_by_layer(lecture_net):
    # each layer multiplies the std by about 0.01 * sqrt(4096) = 0.64 (tanh is ~linear there): the lecture's table
    stds = _tanh_stds(lecture_net, "normal:0.01")
    assert len(stds) == 6
    assert all(later < earlier * 0.7 for earlier, later in zip(stds, stds[1:]))
    assert stds[-1] < 0.06
    assert stds == pytest.approx(LECTURE_SMALL_NORMAL_STDS, abs=0.03)


def test_xavier_init_activations_match_the_lecture_table(lecture_net):
    stds = _tanh_stds(lecture_net, "xavier")
    assert stds == pytest.approx(LECTURE_XAVIER_STDS, abs=0.03)
