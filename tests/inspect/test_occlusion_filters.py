"""Occlusion finds the only informative region; the filter grid has one tile per first-layer filter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from convcoach.inspect.filters import filter_tiles, first_layer_filters
from convcoach.inspect.occlusion import occlusion_map
from convcoach.inspect.run import filters_finding
from convcoach.models import create_model
from convcoach.render.figures import mosaic

SIZE = 12
REGION = (slice(2, 6), slice(6, 10))  # rows 2-5, columns 6-9: the only pixels the model reads


def region_model() -> nn.Module:
    """Two-class linear model: class 0's score is a quarter of the region's pixel sum, class 1's is a constant 2."""
    linear = nn.Linear(SIZE * SIZE, 2)
    with torch.no_grad():
        weight = torch.zeros(2, 1, SIZE, SIZE)
        weight[0, 0][REGION] = 0.25
        linear.weight.copy_(weight.view(2, -1))
        linear.bias.copy_(torch.tensor([0.0, 2.0]))
    return nn.Sequential(nn.Flatten(), linear).eval()


def test_occluding_the_only_informative_region_drops_the_probability_most_there():
    image = torch.rand(1, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    image[0][REGION] = 1.0
    result = occlusion_map(region_model(), image, target=0, patch=3, stride=1)
    assert result.drop.shape == (SIZE, SIZE)
    assert result.base_probability == pytest.approx(
        torch.tensor([4.0, 2.0]).softmax(0)[0].item()
    )  # logits 16 x 0.25 vs 2
    row, col = divmod(int(result.drop.argmax()), SIZE)
    assert 2 <= row < 6 and 6 <= col < 10
    inside = result.drop[REGION].mean().item()
    far = torch.cat([result.drop[8:, :].flatten(), result.drop[:, :3].flatten()])
    assert inside > 0.2
    assert far.abs().max().item() == 0.0  # patches that never touch the region change nothing


def test_occlusion_covers_every_pixel_when_the_stride_does_not_divide_the_image():
    # size 10, patch 4, stride 4: range() gives starts 0 and 4, which leave rows/columns 8-9 uncovered;
    # the border patch at 6 covers them (with stride 3 the starts 0, 3, 6 would reach the border anyway)
    linear = nn.Linear(10 * 10, 2)
    with torch.no_grad():
        linear.weight.zero_()
        linear.weight[0, 99] = 2.0  # class 0 reads only pixel (9, 9)
        linear.bias.zero_()
    model = nn.Sequential(nn.Flatten(), linear).eval()
    result = occlusion_map(model, torch.ones(1, 10, 10), target=0, patch=4, stride=4)
    assert result.drop.shape == (10, 10) and result.patch == 4 and result.stride == 4
    base = torch.tensor([2.0, 0.0]).softmax(0)[0].item()  # logits 2 x 1 vs 0
    assert result.base_probability == pytest.approx(base)
    # only the patch at (6, 6) covers (9, 9); with the pixel at 0 both logits are 0: p = 0.5
    assert result.drop[9, 9].item() == pytest.approx(base - 0.5, abs=1e-6) and base - 0.5 > 0.38
    assert result.drop[0, 0].item() == 0.0
    assert result.drop[:6, :].abs().max().item() == 0.0 and result.drop[:, :6].abs().max().item() == 0.0


def test_the_filter_grid_has_one_tile_per_first_layer_filter():
    model = create_model("cnn", (3, 16, 16), 5, depth=1, width=12)
    weights = first_layer_filters(model, (3, 16, 16))
    assert weights.shape == (12, 3, 3, 3)
    tiles = filter_tiles(weights)
    assert tiles.shape == (12, 3, 3, 3) and tiles.min() >= 0 and tiles.max() <= 1
    canvas, corners = mosaic(tiles, columns=8, pad=1)
    assert len(corners) == 12
    for tile, (top, left) in zip(tiles, corners):
        assert np.array_equal(canvas[top : top + 3, left : left + 3], tile)
    finding = filters_finding(model, (3, 16, 16))
    assert finding.data == {"count": 12, "shape": [3, 3, 3]}
    assert finding.png.startswith(b"\x89PNG")


def test_a_linear_first_layer_gives_one_image_sized_template_per_unit():
    model = create_model("linear", (1, 8, 8), 10)
    weights = first_layer_filters(model, (1, 8, 8))
    assert weights.shape == (10, 1, 8, 8)
    assert len(mosaic(filter_tiles(weights), columns=5)[1]) == 10


def test_zero_weight_is_mid_grey_and_each_filter_uses_its_full_range():
    weights = torch.tensor([[[[-2.0, 0.0], [1.0, 2.0]]]])
    tiles = filter_tiles(weights)
    assert tiles[0, :, :, 0].tolist() == [[0.0, 0.5], [0.75, 1.0]]


def test_batched_occlusion_of_several_images_matches_one_at_a_time():
    from convcoach.inspect.occlusion import occlusion_maps

    torch.manual_seed(0)
    model = create_model("cnn", (1, 10, 10), 3, depth=1, width=4).eval()
    images = torch.randn(3, 1, 10, 10)
    batched = occlusion_maps(model, images, [0, 2, 1], patch=4, stride=2, batch_size=7)  # chunks cut across images
    for image, target, result in zip(images, [0, 2, 1], batched):
        alone = occlusion_map(model, image, target, patch=4, stride=2)
        assert result.base_probability == pytest.approx(alone.base_probability, abs=1e-6)
        assert torch.allclose(result.drop, alone.drop, atol=1e-6)
