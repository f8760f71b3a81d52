"""run_facts.pixel_shift: where the test images differ from the training images, pixel by pixel."""

from __future__ import annotations

import torch

from convcoach.coach.run_facts import pixel_shift


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
