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
    # pixel (i, j) holds 10 i + j + 1: bilinear sampling of this plane returns 10 row + col + 1 at the sampled point
    index = torch.arange(8, dtype=torch.float32)
    x = (10 * index.view(8, 1) + index.view(1, 8) + 1).expand(3, 1, 8, 8).clone()
    views = views_of("multiscale:0.5:1:2", x)
    assert len(views) == 6
    assert torch.equal(views[1], x)
    for view, mirrored in zip(views[:3], views[3:]):
        assert torch.equal(mirrored, view.flip(3))

    def plane(positions: list[float]) -> torch.Tensor:
        at = torch.tensor(positions)
        return (10 * at.view(8, 1) + at.view(1, 8) + 1).expand(3, 1, 8, 8)

    # output pixel j samples input position 3.5 + (j - 3.5) / scale; outside [0, 7] the edge pixel is repeated
    # (warp pads with the border, not with zeros): scale 0.5 shows the whole image shrunk into the middle
    assert torch.allclose(views[0], plane([0, 0, 0.5, 2.5, 4.5, 6.5, 7, 7]), atol=1e-4)
    # scale 2 shows the central half, magnified: positions 1.75, 2.25, ..., 5.25
    assert torch.allclose(views[2], plane([1.75 + j / 2 for j in range(8)]), atol=1e-4)
    ones = torch.ones(1, 1, 8, 8)
    assert torch.equal(views_of("multiscale:0.5", ones)[0], ones)  # the border fill is the edge colour: no dark frame


def test_tta_model_returns_the_log_of_the_mean_softmax():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(20, 3))
    x = torch.randn(4, 1, 4, 5)
    wrapped = TTAModel(model, lambda batch: [batch, batch.flip(3)])
    expected = (model(x).softmax(1) + model(x.flip(3)).softmax(1)) / 2
    assert torch.allclose(wrapped(x).softmax(1), expected, atol=1e-6)
    assert torch.allclose(wrapped(x).exp().sum(1), torch.ones(4), atol=1e-6)


def test_evaluating_through_the_tta_wrapper_leaves_the_model_in_its_own_mode():
    from convcoach.evaluate.passes import evaluate

    model = nn.Sequential(nn.Flatten(), nn.Linear(20, 3), nn.BatchNorm1d(3)).eval()
    batches = [(torch.randn(4, 1, 4, 5), torch.tensor([0, 1, 2, 0]))]
    evaluate(TTAModel(model, lambda batch: [batch, batch.flip(3)]), batches, nn.functional.cross_entropy, 3)
    assert (
        not model.training
    )  # a fresh wrapper is in training mode; restoring that would put BatchNorm on batch statistics


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
