"""Channel conversion of the first layer: a gray image and the same image as three equal channels agree."""

from __future__ import annotations

import pytest
import torch

from convcoach.data import Normalizer
from convcoach.errors import ConfigError
from convcoach.models import create_model
from convcoach.transfer.channels import check_image_size, convert_input_channels, convert_normalizer

MODELS = {
    "resnet": {"width": 4},
    "resnet-unshuffle": {"width": 4, "stem": "unshuffle"},
    "cnn": {"depth": 2, "width": 4},
    "mlp": {"width": 8},
}


@pytest.mark.parametrize("name", list(MODELS))
def test_rgb_network_converted_to_gray_matches_gray_given_as_three_channels(name):
    torch.manual_seed(0)
    model = create_model(name.split("-")[0], (3, 12, 12), 4, **MODELS[name]).eval()
    gray = torch.randn(5, 1, 12, 12)
    expected = model(gray.repeat(1, 3, 1, 1))
    message = convert_input_channels(model, 1, (12, 12))
    assert (
        message
        == "converted the first layer's weights from 3 to 1 input channel(s) (summed over RGB); the data is unchanged"
    )
    assert torch.allclose(model(gray), expected, atol=1e-5)


@pytest.mark.parametrize("name", list(MODELS))
def test_gray_network_converted_to_rgb_gives_the_gray_output_on_three_equal_channels(name):
    torch.manual_seed(0)
    model = create_model(name.split("-")[0], (1, 12, 12), 4, **MODELS[name]).eval()
    gray = torch.randn(5, 1, 12, 12)
    expected = model(gray)
    message = convert_input_channels(model, 3, (12, 12))
    assert message == (
        "converted the first layer's weights from 1 to 3 input channel(s) (replicated and divided by 3); "
        "the data is unchanged"
    )
    assert torch.allclose(model(gray.repeat(1, 3, 1, 1)), expected, atol=1e-5)


def test_same_channel_count_is_left_alone_and_normalizer_follows_the_channels():
    model = create_model("cnn", (1, 12, 12), 4, depth=2, width=4)
    assert convert_input_channels(model, 1, (12, 12)) is None
    assert convert_normalizer(Normalizer([0.2], [0.3]), 3) == Normalizer([0.2] * 3, [0.3] * 3)
    rgb = convert_normalizer(Normalizer([0.1, 0.2, 0.3], [0.2, 0.3, 0.4]), 1)
    assert rgb.mean == pytest.approx([0.2]) and rgb.std == pytest.approx([0.3])


def test_network_without_adaptive_pooling_names_the_size_it_needs():
    model = create_model("mlp", (1, 12, 12), 4, width=8)
    check_image_size(
        create_model("cnn", (1, 12, 12), 4, depth=2, width=4), (1, 12, 12), (1, 20, 20), "cnn"
    )  # adaptive: fine
    with pytest.raises(ConfigError, match=r"'mlp' takes 12x12 images, not 16x16: resize the data with --image-size 12"):
        check_image_size(model, (1, 12, 12), (1, 16, 16), "'mlp'")
