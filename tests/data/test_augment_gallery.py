"""The augmentation gallery: every op's shape, dtype, range and seeding; identities; fancy PCA's
directions; colour ops on grayscale; errors that name the spec; the loader fits what needs fitting."""

from __future__ import annotations

import math

import pytest
import torch

from convcoach.data.augment import parse_augment
from convcoach.data.augment_color import colour_pca
from convcoach.data.augment_erase import box_mask
from convcoach.data.loader import BatchLoader
from convcoach.data.preprocess import Normalizer
from convcoach.data.sources import Split
from convcoach.errors import ConfigError

EVERY_OP = [
    "hflip",
    "vflip",
    "crop:2",
    "resized_crop:0.3",
    "scale:0.2",
    "rotate:20",
    "shear:15",
    "stretch:0.2",
    "affine:10:10:0.1",
    "elastic:2:4",
    "brightness:0.4",
    "contrast:0.4",
    "saturation:0.5",
    "hue:0.1",
    "jitter:0.4:0.05",
    "pca:0.1",
    "noise:0.1",
    "cutout:6",
    "erase:1",
    "randaugment:2:9",
    "randaugment:4:30",
]
ZERO_STRENGTH = [
    "hflip:0",
    "vflip:0",
    "crop:0",
    "translate:0",
    "rotate:0",
    "shear:0",
    "stretch:0",
    "scale:0",
    "affine:0:0:0",
    "elastic:0",
    "brightness:0",
    "contrast:0",
    "saturation:0",
    "hue:0",
    "jitter:0",
    "pca:0",
    "noise:0",
    "cutout:0",
    "erase:0",
]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def uint8_images(n: int = 24, channels: int = 3, size: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, channels, size, size), generator=gen(seed), dtype=torch.uint8)


def fitted(spec: str, images: torch.Tensor) -> tuple:
    normalizer = Normalizer.fit(images)
    return parse_augment(spec).fit(images, normalizer), normalizer


def valid_range(normalizer: Normalizer) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(normalizer.mean).view(1, -1, 1, 1)
    std = torch.tensor(normalizer.std).view(1, -1, 1, 1)
    return -mean / std, (1 - mean) / std


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("spec", EVERY_OP)
def test_every_op_keeps_shape_dtype_and_the_pixel_range(spec, channels):
    images = uint8_images(channels=channels)
    augment, normalizer = fitted(spec, images)
    x = normalizer(images)
    out = augment(x, gen())
    assert out.shape == x.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    low, high = valid_range(normalizer)
    if not spec.startswith(("noise", "erase")):  # additive noise and erasing's noise fill are not images
        assert (out >= low - 1e-4).all() and (out <= high + 1e-4).all()
    if spec not in ("saturation:0.5", "hue:0.1") or channels == 3:
        assert not torch.equal(out, x), f"{spec} left the batch unchanged"


@pytest.mark.parametrize("spec", EVERY_OP)
def test_same_seed_gives_the_same_augmented_batch_and_another_seed_another(spec):
    images = uint8_images()
    augment, normalizer = fitted(spec, images)
    x = normalizer(images)
    assert torch.equal(augment(x, gen(5)), augment(x, gen(5)))
    if not spec.startswith(("hflip", "vflip")):  # 24 coin flips could in principle repeat; continuous draws cannot
        assert not torch.equal(augment(x, gen(5)), augment(x, gen(6)))


@pytest.mark.parametrize("spec", ZERO_STRENGTH)
def test_zero_probability_or_strength_leaves_the_batch_unchanged(spec):
    images = uint8_images()
    augment, normalizer = fitted(spec, images)
    x = normalizer(images)
    assert torch.allclose(augment(x, gen()), x, atol=1e-5), spec


def test_vflip_twice_is_the_identity():
    # hflip's case is test_loader_augment.py::test_hflip_with_p1_mirrors_and_twice_is_identity
    x = torch.randn(5, 3, 6, 7, generator=gen())
    flip = parse_augment("vflip:1")
    assert not torch.equal(flip(x, gen()), x)
    assert torch.equal(flip(flip(x, gen()), gen(1)), x)


def test_saturation_and_hue_skip_grayscale_images():
    images = uint8_images(channels=1)
    augment, normalizer = fitted("saturation:0.9,hue:0.5", images)
    x = normalizer(images)
    assert torch.allclose(augment(x, gen()), x, atol=1e-6)


def test_brightness_scales_pixels_by_a_factor_within_its_range():
    images = torch.full((200, 1, 4, 4), 100, dtype=torch.uint8)
    normalizer = Normalizer([0.0], [1.0])
    augment = parse_augment("brightness:0.3").fit(images, normalizer)
    factors = augment(normalizer(images), gen())[:, 0, 0, 0] / (100 / 255)
    assert factors.min() >= 0.7 - 1e-5 and factors.max() <= 1.3 + 1e-5
    assert factors.max() - factors.min() > 0.5  # a fresh draw per sample


def test_gaussian_noise_has_the_requested_standard_deviation():
    x = torch.zeros(64, 3, 16, 16)
    out = parse_augment("noise:0.2")(x, gen())
    assert out.std().item() == pytest.approx(0.2, rel=0.03)
    assert out.mean().item() == pytest.approx(0.0, abs=0.01)


def test_cutout_zeroes_a_square_of_the_given_side_inside_the_image():
    x = torch.ones(300, 1, 20, 20)
    out = parse_augment("cutout:6")(x, gen())
    zeroed = (out == 0).sum(dim=(1, 2, 3))
    assert zeroed.max().item() == 36  # fully inside: 6 x 6
    assert zeroed.min().item() >= 9  # the centre is always inside, so at least a 3 x 3 quarter


def test_random_erasing_with_p1_fills_one_box_per_sample_with_noise():
    x = torch.full((50, 1, 16, 16), 7.0)
    out = parse_augment("erase:1:0.4")(x, gen())
    changed = (out != 7.0).float().mean(dim=(1, 2, 3))
    assert (changed > 0.01).all() and (changed <= 0.45).all()


def test_box_mask_covers_rows_and_columns_half_open():
    x = torch.zeros(1, 1, 5, 5)
    mask = box_mask(x, torch.tensor([1]), torch.tensor([2]), torch.tensor([2]), torch.tensor([3]))
    assert mask.sum().item() == 6
    assert mask[0, 0, 1:3, 2:5].all()


def test_rotation_by_a_fixed_angle_moves_a_pixel_on_a_circle():
    from convcoach.data.augment_geometry import affine_theta, warp

    x = torch.zeros(1, 1, 21, 21)
    x[0, 0, 10, 16] = 1.0  # 6 px right of the centre
    angle = math.pi / 2
    forward = torch.tensor([[[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]])
    out = warp(x, affine_theta(forward, 21, 21))
    row, col = divmod(int(out.flatten().argmax()), 21)
    assert (row, col) == (16, 10)  # y points down: +90 degrees takes "right" to "below"


def test_fancy_pca_finds_the_eigenvectors_of_the_colour_covariance():
    generator = gen(1)
    direction = torch.tensor([0.8, 0.5, 0.33])
    direction = direction / direction.norm()
    amount = torch.rand(400, 1, 1, 1, generator=generator) - 0.5
    pixels = 0.5 + 0.6 * amount * direction.view(1, 3, 1, 1) + 0.01 * torch.randn(400, 3, 4, 4, generator=generator)
    images = (pixels.clamp(0, 1) * 255).round().to(torch.uint8)
    vectors, values = colour_pca(images)
    flat = images.double().div(255).transpose(0, 1).reshape(3, -1)
    expected_values, expected_vectors = torch.linalg.eigh(torch.cov(flat, correction=0))
    assert torch.allclose(values.double(), expected_values.flip(0), rtol=1e-4, atol=1e-8)
    assert abs(torch.dot(vectors[:, 0].double(), expected_vectors[:, -1]).item()) == pytest.approx(1.0, abs=1e-5)
    assert abs(torch.dot(vectors[:, 0], direction).item()) > 0.99


def test_fancy_pca_offsets_lie_along_the_training_sets_principal_directions():
    generator = gen(2)
    direction = torch.tensor([1.0, -0.6, 0.3])
    direction = direction / direction.norm()
    amount = torch.rand(500, 1, 1, 1, generator=generator) - 0.5
    train = (
        (0.5 + 0.5 * amount * direction.view(1, 3, 1, 1))
        .clamp(0, 1)
        .mul(255)
        .round()
        .to(torch.uint8)
        .expand(500, 3, 6, 6)
    )
    normalizer = Normalizer.fit(train)
    augment = parse_augment("pca:0.1").fit(train, normalizer)
    gray = torch.full((300, 3, 6, 6), 128, dtype=torch.uint8)  # mid-gray: no clipping
    x = normalizer(gray)
    std = torch.tensor(normalizer.std).view(1, 3, 1, 1)
    offsets = (augment(x, gen(3)) - x) * std  # back to pixel units
    assert torch.allclose(offsets, offsets[:, :, :1, :1].expand_as(offsets), atol=1e-6)  # one colour shift per image
    per_image = offsets[:, :, 0, 0]
    # the training set varies along `direction` (plus uint8 rounding): so do the offsets, to 99.9% of their energy
    along = (per_image @ direction).pow(2).sum() / per_image.pow(2).sum()
    assert along.item() > 0.999
    spread = (
        torch.linalg.eigh(torch.cov(train.double().div(255).transpose(0, 1).reshape(3, -1), correction=0))[0][-1]
    ).sqrt()
    # alpha ~ N(0, 0.1) times the spread along the direction
    assert per_image.norm(dim=1).pow(2).mean().sqrt().item() == pytest.approx(0.1 * spread.item(), rel=0.15)


def test_colour_ops_need_fitting_and_say_so():
    op = parse_augment("jitter:0.4")
    assert op.needs_fit
    with pytest.raises(RuntimeError, match=r"augmentation 'jitter:0.4' works in pixel units: call Augmenter.fit"):
        op(torch.zeros(2, 3, 4, 4), gen())


def test_training_loader_fits_the_augmenter_on_its_split():
    images = uint8_images(channels=3)
    split = Split(images, torch.zeros(len(images), dtype=torch.long))
    augment = parse_augment("pca:0.1,jitter:0.2")
    BatchLoader(split, 8, Normalizer.fit(images), shuffle=True, augment=augment)
    assert not augment.needs_fit
    expected, _ = colour_pca(images)
    assert torch.allclose(augment.ops[0].eigenvectors.abs(), expected.abs())


def test_randaugment_changes_every_sample_with_a_fresh_op_draw():
    images = uint8_images(n=64, channels=3)
    augment, normalizer = fitted("randaugment:1:30", images)
    x = normalizer(images)
    out = augment(x, gen())
    changed = (out - x).abs().flatten(1).amax(dim=1) > 1e-4
    # 1 of 14 ops is the identity: about 1/14 of the samples stay as they are
    assert 40 <= changed.sum().item() < 64


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("rotate:200", "augmentation 'rotate:200': magnitude 200.0 is outside [0, 180]"),
        ("jitter:1.5", "augmentation 'jitter:1.5': magnitude 1.5 is outside [0, 1]"),
        ("hue:0.7", "augmentation 'hue:0.7': magnitude 0.7 is outside [0, 0.5]"),
        ("pca:-1", "augmentation 'pca:-1': magnitude -1.0 is outside [0, 2]"),
        ("elastic:2:1", "augmentation 'elastic:2:1': magnitude 1.0 is outside [2, 32]"),
        ("randaugment:2:31", "augmentation 'randaugment:2:31': magnitude 31.0 is outside [0, 30]"),
        ("randaugment:1.5:9", "augmentation 'randaugment:1.5:9': the op count 1.5 must be a whole number"),
        ("erase:0.5:0.01", "augmentation 'erase:0.5:0.01': magnitude 0.01 is outside [0.02, 1]"),
        ("cutout:big", "augmentation 'cutout:big': 'big' is not a number"),
        ("hflip,rotat:10", "unknown augmentation 'rotat' (did you mean 'rotate'?)"),
    ],
)
def test_bad_specs_are_errors_naming_the_op(spec, message):
    with pytest.raises(ConfigError) as info:
        parse_augment(spec)
    assert message in str(info.value)
