"""The model registry: shapes, options, norms/activations, and the errors a user sees."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from convcoach.errors import ConfigError
from convcoach.models import MODELS, create_model, model_options
from convcoach.models.layers import ACTIVATIONS, activation

SHAPES = [(1, 28, 28), (3, 32, 32)]
NORMS = ["batch", "layer", "instance", "group:4", "none"]
# small versions of the conv nets so the whole matrix runs in well under a second each
SMALL = {"cnn": {"depth": 2, "width": 4, "fc_width": 8}, "resnet": {"depth": 8, "width": 4}}


def _logits(model: nn.Module, shape: tuple[int, int, int], batch: int = 2) -> torch.Tensor:
    torch.manual_seed(0)
    return model(torch.randn(batch, *shape))


def test_registry_holds_the_five_architectures():
    # plus `truncated`: a network cut after one stage, built by transfer learning (models/stages.py)
    assert MODELS.names() == [
        "alexnet",
        "cnn",
        "linear",
        "mlp",
        "mobilenet_v3_large",
        "resnet",
        "resnet18",
        "resnet34",
        "resnet50",
        "truncated",
        "vgg",
        "vgg11_bn",
        "vgg16_bn",
    ]


@pytest.mark.parametrize("shape", SHAPES, ids=["mnist", "cifar"])
@pytest.mark.parametrize("name", ["linear", "mlp", "cnn", "vgg", "resnet"])
def test_every_model_gives_logits_of_shape_batch_by_classes(name, shape):
    model = create_model(name, shape, 10)
    out = _logits(model, shape, batch=3)
    assert out.shape == (3, 10)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("shape", SHAPES, ids=["mnist", "cifar"])
@pytest.mark.parametrize("stem", ["pool_early", "pool", "stride", "unshuffle", "none"])
def test_resnet_identity_shortcut_gives_logits_for_28_and_32_px(shape, stem):
    # 28 px with the stem pool reaches stage 3 at 7x7: the parameter-free shortcut must subsample to 4x4
    # like the strided conv
    model = create_model("resnet", shape, 10, width=4, shortcut="identity", stem=stem)
    assert _logits(model, shape).shape == (2, 10)


@pytest.mark.parametrize("shape", SHAPES, ids=["mnist", "cifar"])
@pytest.mark.parametrize("shortcut", ["projection", "identity"])
@pytest.mark.parametrize("downsample", ["stride", "pool", "conv_pool"])
def test_every_downsample_reaches_the_same_map_sizes(shape, shortcut, downsample):
    model = create_model("resnet", shape, 10, depth=8, width=4, shortcut=shortcut, downsample=downsample)
    sizes = []
    model.blocks[1].register_forward_hook(lambda module, inputs, out: sizes.append(out.shape[2:]))
    model.blocks[2].register_forward_hook(lambda module, inputs, out: sizes.append(out.shape[2:]))
    assert _logits(model, shape).shape == (2, 10)
    half = shape[1] // 2
    assert sizes == [(half // 2, half // 2), ((half + 3) // 4, (half + 3) // 4)]  # 28 px: 7 then 4; 32 px: 8 then 4


def test_pool_downsample_max_pools_the_block_input_for_both_paths():
    block = create_model("resnet", (1, 28, 28), 10, depth=8, width=2, downsample="pool").blocks[1]
    assert isinstance(block.pool_input, torch.nn.MaxPool2d) and block.conv1.stride == (1, 1)
    assert block.shortcut[0].stride == (1, 1)  # the 1x1 projection sees the pooled map
    x = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(1, 2, 1, 1)
    assert block.pool_input(x)[0, 0].tolist() == [[5.0, 7.0], [13.0, 15.0]]


def test_conv_pool_downsample_runs_the_first_conv_at_full_size_then_pools():
    block = create_model("resnet", (1, 28, 28), 10, depth=8, width=2, downsample="conv_pool").blocks[1]
    assert block.conv1.stride == (1, 1) and isinstance(block.pool1, torch.nn.MaxPool2d)
    maps = []
    block.conv1.register_forward_hook(lambda module, inputs, out: maps.append(out.shape[2:]))
    assert block(torch.randn(2, 2, 14, 14)).shape == (2, 4, 7, 7)
    assert maps == [(14, 14)]


def test_an_unknown_downsample_is_an_error_naming_the_choices():
    with pytest.raises(ConfigError, match="downsample must be one of stride, pool, conv_pool, got 'avg'"):
        create_model("resnet", (1, 28, 28), 10, downsample="avg")


def test_unshuffle_stem_turns_each_2x2_block_into_4_channels_before_its_conv():
    model = create_model("resnet", (1, 28, 28), 10, width=8, stem="unshuffle")
    unshuffle, conv = model.stem[0], model.stem[1]
    assert conv.in_channels == 4 and conv.weight.shape == (8, 4, 3, 3)
    image = torch.arange(16.0).reshape(1, 1, 4, 4)
    blocks = unshuffle(image)  # lossless: the 4 channels hold the 4 pixels of each 2x2 block
    assert blocks.shape == (1, 4, 2, 2)
    assert blocks[0, :, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]
    assert blocks[0, :, 1, 1].tolist() == [10.0, 11.0, 14.0, 15.0]
    assert model.stem(torch.zeros(2, 1, 28, 28)).shape == (2, 8, 14, 14)


# each activation at x = -1 and x = 1, worked out by hand
ACTIVATION_AT_MINUS_1_AND_1 = {
    "relu": (0.0, 1.0),
    "leaky_relu": (-0.01, 1.0),  # slope 0.01 below zero
    "elu": (math.exp(-1) - 1, 1.0),  # -0.63212
    "tanh": (-math.tanh(1), math.tanh(1)),  # -+0.76159
    "sigmoid": (1 / (1 + math.e), 1 / (1 + math.exp(-1))),  # 0.26894, 0.73106
    "silu": (-1 / (1 + math.e), 1 / (1 + math.exp(-1))),  # x * sigmoid(x): -0.26894, 0.73106
    "gelu": (
        -0.5 * (1 - math.erf(1 / math.sqrt(2))),
        0.5 * (1 + math.erf(1 / math.sqrt(2))),
    ),  # x * Phi(x), exact erf: -0.15866, 0.84134
}


def test_the_activation_table_covers_the_registry():
    assert sorted(ACTIVATION_AT_MINUS_1_AND_1) == sorted(ACTIVATIONS.names())


@pytest.mark.parametrize("act", sorted(ACTIVATION_AT_MINUS_1_AND_1))
def test_every_activation_computes_its_function(act):
    out = activation(act)(torch.tensor([-1.0, 1.0]))
    assert out.tolist() == pytest.approx(ACTIVATION_AT_MINUS_1_AND_1[act], abs=1e-6)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS.names()))
@pytest.mark.parametrize("name", ["cnn", "resnet"])
def test_every_activation_builds_and_runs(name, act):
    model = create_model(name, (3, 16, 16), 5, activation_name=act, **SMALL[name])
    kind = type(activation(act))
    convs = sum(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) for m in model.modules())
    assert (
        sum(type(m) is kind for m in model.modules()) >= convs
    )  # one after every 3x3 conv: the requested one, not a default
    assert act == "relu" or not any(isinstance(m, nn.ReLU) for m in model.modules())
    out = _logits(model, (3, 16, 16))
    assert out.shape == (2, 5)
    assert torch.isfinite(out).all()
    out.sum().backward()  # in-place activations must not break autograd


@pytest.mark.parametrize("norm_spec", NORMS)
@pytest.mark.parametrize("name", ["cnn", "resnet"])
def test_every_norm_builds_and_runs(name, norm_spec):
    model = create_model(name, (1, 16, 16), 7, norm_spec=norm_spec, **SMALL[name])
    out = _logits(model, (1, 16, 16))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


def test_group_norm_uses_the_requested_group_count():
    model = create_model("cnn", (1, 28, 28), 10, norm_spec="group:4", depth=1, width=8)
    groups = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert groups and all(m.num_groups == 4 for m in groups)


def test_layer_and_instance_norm_are_one_group_and_one_group_per_channel():
    layer = create_model("cnn", (1, 28, 28), 10, norm_spec="layer", depth=1, width=8)
    instance = create_model("cnn", (1, 28, 28), 10, norm_spec="instance", depth=1, width=8)
    assert [m.num_groups for m in layer.modules() if isinstance(m, nn.GroupNorm)] == [1, 1]
    assert [m.num_groups for m in instance.modules() if isinstance(m, nn.GroupNorm)] == [8, 8]


def test_unknown_option_is_an_error_naming_it_and_suggesting_the_nearest():
    with pytest.raises(ConfigError, match=r"no option 'widht'.*did you mean 'width'"):
        create_model("cnn", (1, 28, 28), 10, widht=8)


def test_none_options_fall_back_to_the_builder_defaults():
    model = create_model("cnn", (1, 28, 28), 10, depth=None, width=None)
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.out_channels == 32


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(
        ConfigError,
        match=r"unknown model 'resnett'.*did you mean 'resnet'.*known: alexnet, cnn, linear, mlp, "
        r"mobilenet_v3_large, resnet, resnet18, .*, vgg16_bn",
    ):
        create_model("resnett", (1, 28, 28), 10)


def test_model_options_lists_the_builder_keywords():
    assert model_options("linear") == []
    assert model_options("resnet") == [
        "depth",
        "width",
        "activation_name",
        "norm_spec",
        "dropout",
        "shortcut",
        "stem",
        "stochastic_depth",
        "downsample",
    ]
    assert "pool" in model_options("cnn")


@pytest.mark.parametrize("depth", [6, 10, 21])
def test_resnet_depth_must_be_6n_plus_2(depth):
    with pytest.raises(ConfigError, match=r"6n\+2"):
        create_model("resnet", (1, 28, 28), 10, depth=depth)


@pytest.mark.parametrize("depth", [8, 14, 20])
def test_resnet_has_3n_basic_blocks(depth):
    model = create_model("resnet", (1, 28, 28), 10, depth=depth, width=4)
    assert len(model.blocks) == 3 * (depth - 2) // 6


def test_vgg_rejects_an_unplanned_depth():
    with pytest.raises(ConfigError, match=r"vgg depth must be one of \[6, 8, 11, 13, 16\], got 9"):
        create_model("vgg", (1, 28, 28), 10, depth=9)


def test_resnet_identity_shortcut_has_fewer_parameters_than_projection():
    def count(shortcut: str) -> int:
        model = create_model("resnet", (3, 32, 32), 10, width=16, shortcut=shortcut)
        return sum(p.numel() for p in model.parameters())

    identity, projection = count("identity"), count("projection")
    # projection adds a 1x1 conv + BatchNorm at the two down-sampling blocks: 16*32 + 2*32 and 32*64 + 2*64
    assert projection - identity == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)


@pytest.mark.parametrize("name", ["cnn", "vgg", "resnet"])
def test_convs_have_no_bias_when_a_norm_follows(name):
    with_norm = create_model(name, (1, 28, 28), 10, norm_spec="batch", width=4)
    without = create_model(name, (1, 28, 28), 10, norm_spec="none", width=4)
    convs_norm = [m for m in with_norm.modules() if isinstance(m, nn.Conv2d)]
    convs_plain = [m for m in without.modules() if isinstance(m, nn.Conv2d)]
    assert convs_norm and all(m.bias is None for m in convs_norm)
    assert convs_plain and all(m.bias is not None for m in convs_plain)


def test_mlp_of_the_init_lecture_has_six_hidden_bias_free_tanh_layers():
    with torch.device("meta"):  # 100M parameters: build the structure without allocating them
        model = create_model("mlp", (1, 28, 28), 10, depth=6, width=4096, activation_name="tanh", bias=False)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    hidden = linears[:-1]
    assert len(hidden) == 6
    assert [(m.in_features, m.out_features) for m in hidden] == [(784, 4096)] + [(4096, 4096)] * 5
    assert (linears[-1].in_features, linears[-1].out_features) == (4096, 10)
    assert all(m.bias is None for m in linears)
    assert sum(isinstance(m, nn.Tanh) for m in model.modules()) == 6


def test_mlp_default_is_the_two_layer_net():
    model = create_model("mlp", (3, 32, 32), 10)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3072, 100), (100, 10)]


def test_linear_classifier_is_one_affine_layer_on_the_flattened_image():
    model = create_model("linear", (3, 32, 32), 10)
    assert sum(p.numel() for p in model.parameters()) == 3072 * 10 + 10


@pytest.mark.parametrize(
    ("pool", "sizes"), [("fractional", [19, 13]), ("fractional:0.6", [16, 9]), ("max", [14, 7]), ("avg", [14, 7])]
)
def test_cnn_pooling_choices_shrink_the_maps_by_their_ratio(pool, sizes):
    model = create_model("cnn", (1, 28, 28), 10, pool=pool, depth=2, width=4, fc_width=8)
    seen: list[int] = []
    for module in model.modules():
        if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d, nn.FractionalMaxPool2d)):
            module.register_forward_hook(lambda mod, inp, out: seen.append(out.shape[-1]))
    out = _logits(model, (1, 28, 28))
    assert out.shape == (2, 10)
    assert seen == sizes


def test_fractional_pooling_is_fractional_max_pool():
    model = create_model("cnn", (1, 28, 28), 10, pool="fractional", depth=2, width=4)
    pools = [m for m in model.modules() if isinstance(m, nn.FractionalMaxPool2d)]
    assert len(pools) == 2
    assert tuple(pools[0].output_ratio) == (0.7, 0.7)


def test_unknown_pool_is_an_error():
    with pytest.raises(ConfigError, match="unknown pooling 'maxx'"):
        create_model("cnn", (1, 28, 28), 10, pool="maxx")
