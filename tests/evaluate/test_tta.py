"""Test-time augmentation: the views of each mode, the averaged probabilities, and the spec errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from convcoach.errors import ConfigError
from convcoach.evaluate.tta import TTAModel, parse_tta


def views_of(spec: str, x: torch.Tensor) -> list[torch.Tensor]:
    return parse_tta(spec)(None)(x)


def test_flip_gives_the_image_and_its_mirror():
    x = torch.randn(2, 1, 5, 6)
    views = views_of("flip", x)
    assert len(views) == 2 and torch.equal(views[0], x) and torch.equal(views[1], x.flip(3))


def test_ten_crop_is_four_corners_and_the_centre_with_their_flips():
    x = torch.arange(2 * 36, dtype=torch.float32).view(2, 1, 6, 6) + 1
    views = views_of("10crop:2", x)
    assert len(views) == 10 and all(v.shape == x.shape for v in views)
    assert torch.equal(views[4], x)  # the centre crop of the padded image is the image
    assert torch.equal(views[9], x.flip(3))
    top_left = views[0]
    assert torch.equal(top_left[:, :, 2:, 2:], x[:, :, :4, :4]) and (top_left[:, :, :2, :] == 0).all()
    bottom_right = views[3]
    assert torch.equal(bottom_right[:, :, :4, :4], x[:, :, 2:, 2:])


def test_multiscale_keeps_the_unit_scale_view_and_zooms_the_others():
    x = torch.randn(3, 1, 8, 8)
    views = views_of("multiscale:0.8:1:1.25", x)
    assert len(views) == 6
    assert torch.equal(views[1], x)
    assert not torch.allclose(views[0], x) and not torch.allclose(views[2], x)


def test_tta_model_returns_the_log_of_the_mean_softmax():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(20, 3))
    x = torch.randn(4, 1, 4, 5)
    wrapped = TTAModel(model, lambda batch: [batch, batch.flip(3)])
    expected = (model(x).softmax(1) + model(x.flip(3)).softmax(1)) / 2
    assert torch.allclose(wrapped(x).softmax(1), expected, atol=1e-6)
    assert torch.allclose(wrapped(x).exp().sum(1), torch.ones(4), atol=1e-6)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mirror", "unknown test-time augmentation 'mirror'"),
        ("random:0", "test-time augmentation 'random:0': 0 must be a whole number in [1, 256]"),
        ("10crop:1.5", "test-time augmentation '10crop:1.5': 1.5 must be a whole number in [1, 64]"),
        ("multiscale:0.1", "test-time augmentation 'multiscale:0.1': scales must be in [0.25, 4]"),
    ],
)
def test_bad_tta_specs_are_errors_naming_them(spec, message):
    with pytest.raises(ConfigError) as info:
        parse_tta(spec)
    assert message in str(info.value)
