"""run_facts: where the test images differ from the training images pixel by pixel (pixel_shift), and near-copies
between the splits that byte hashes miss (near_copies)."""

from __future__ import annotations

import torch

from convcoach.coach.run_facts import near_copies, pixel_shift


def _images(n: int, seed: int, channels: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, 8, 8), generator=generator, dtype=torch.uint8)


def test_two_draws_from_one_source_differ_at_no_pixel():
    shift = pixel_shift(_images(2000, 0), _images(500, 1))
    assert shift["shifted"] == 0 and shift["entries"] == 64 and shift["max_z"] < 5
    assert abs(shift["brightness"][0] - 0.5) < 0.01 and abs(shift["brightness"][1] - 0.5) < 0.02


def test_a_white_pixel_on_a_tenth_of_the_training_images_is_found_where_it_is():
    train, test = _images(2000, 0) // 4, _images(500, 1) // 4  # values 0-63
    train[::10, 0, 1, 6] = 255  # mean there: ~0.1 * 255 + 0.9 * 31.5, against 31.5 on test
    shift = pixel_shift(train, test)
    assert shift["shifted"] == 1 and shift["at"] == [1, 6]
    assert shift["train_mean"] == round(float(train[:, 0, 1, 6].double().mean()) / 255, 3)
    assert abs(shift["test_mean"] - 31.5 / 255) < 0.01 and shift["max_z"] > 10


def test_an_inverted_test_split_differs_everywhere_and_colour_images_name_the_channel():
    train = _images(1000, 0, channels=3) // 2  # 0-127
    shift = pixel_shift(train, 255 - _images(300, 1, channels=3) // 2)
    assert shift["shifted"] == 192 and len(shift["at"]) == 3
    assert shift["brightness"][0] < 0.26 and shift["brightness"][1] > 0.74
    assert pixel_shift(train, _images(10, 2, channels=1)) is None  # shapes differ: nothing to compare


def _shapes(n: int, seed: int) -> torch.Tensor:
    """Distinct 16 x 16 images: random smooth blobs (no two alike)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, 4, 4, generator=generator)
    return (torch.nn.functional.interpolate(coarse, size=16, mode="bilinear") * 255).to(torch.uint8)


def _noised(images: torch.Tensor, std: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (images.float() + torch.randn(images.shape, generator=generator) * std).clamp(0, 255).to(torch.uint8)


def test_splits_drawn_alike_have_about_5_percent_near_either_way():
    near = near_copies(_shapes(3000, 0), _shapes(300, 1), _shapes(400, 2))
    assert near["val_count"] == 300 and near["test_count"] == 400
    assert 0.0 <= near["test_near"] <= 0.12 and 0.0 <= near["val_near"] <= 0.12


def test_noisy_copies_of_training_images_in_the_test_split_are_found():
    train = _shapes(3000, 0)
    test = torch.cat([_noised(train[:120], 6, 3), _shapes(280, 2)])  # 30% near-copies, no byte-identical one
    near = near_copies(train, _shapes(300, 1), test)
    assert near["test_near"] >= 0.3 and near["val_near"] <= 0.12


def test_noisy_duplicates_within_training_put_validation_at_copy_level():
    originals = _shapes(200, 0)
    pool = _noised(originals.repeat(16, 1, 1, 1), 4, 5)  # 200 images, each 16 times with its own noise
    near = near_copies(pool[:3000], pool[3000:], _shapes(400, 2))
    assert near["val_near"] >= 0.9 and near["val_median"] >= 0.99 and near["val_median"] > near["test_q99"]
    assert near_copies(pool[:3000], pool[3000:3040], _shapes(400, 2)) is None  # under 50 validation images


def test_mirrored_copies_of_training_images_in_the_test_split_are_found():
    train = _shapes(3000, 0)
    test = torch.cat([train[:120].flip(-1), _shapes(280, 2)])  # 30% mirror images of training images
    near = near_copies(train, _shapes(300, 1), test)
    assert near["test_near"] >= 0.3 and near["test_q99"] >= 0.999 and near["val_near"] <= 0.12
