"""Normalizer: exact statistics, standardized output, modes, and state round-trip."""

from __future__ import annotations

import pytest
import torch

from convcoach.data.preprocess import Normalizer
from convcoach.errors import ConfigError


def known_images() -> torch.Tensor:
    """Channel 0 is half 0, half 255; channel 1 is half 51, half 102; channel 2 is half 0, half 51."""
    images = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)
    images[:2, 0], images[2:, 0] = 0, 255
    images[:, 1, 0], images[:, 1, 1] = 51, 102
    images[:, 2, :, 0], images[:, 2, :, 1] = 0, 51
    return images


def random_images(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (16, 3, 8, 8), generator=generator, dtype=torch.uint8)


def channel_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    x = x.to(torch.float64)
    return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3), unbiased=False).tolist()


def test_fit_gives_exact_per_channel_mean_and_std_in_unit_range():
    normalizer = Normalizer.fit(known_images())
    assert normalizer.mean == pytest.approx([0.5, 0.3, 0.1], abs=1e-12)
    assert normalizer.std == pytest.approx([0.5, 0.1, 0.1], abs=1e-12)


def test_fit_over_several_chunks_matches_a_direct_computation():
    images = torch.randint(0, 256, (4100, 2, 2, 2), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    normalizer = Normalizer.fit(images)
    mean, std = channel_stats(images.to(torch.float64) / 255.0)
    assert normalizer.mean == pytest.approx(mean, abs=1e-12)
    assert normalizer.std == pytest.approx(std, abs=1e-12)


def test_normalized_batch_has_zero_mean_unit_std_per_channel():
    images = random_images()
    out = Normalizer.fit(images)(images)
    assert out.dtype == torch.float32
    assert out.shape == images.shape
    mean, std = channel_stats(out)
    assert mean == pytest.approx([0.0, 0.0, 0.0], abs=1e-4)
    assert std == pytest.approx([1.0, 1.0, 1.0], abs=1e-4)


def test_known_values_map_to_plus_minus_one():
    out = Normalizer.fit(known_images())(known_images())
    assert out[0, 0, 0, 0].item() == pytest.approx(-1.0, abs=1e-6)
    assert out[3, 0, 0, 0].item() == pytest.approx(1.0, abs=1e-6)
    assert out[0, 1, 1, 0].item() == pytest.approx(1.0, abs=1e-5)


def test_mean_mode_subtracts_the_mean_and_keeps_unit_std():
    images = random_images()
    normalizer = Normalizer.fit(images, mode="mean")
    assert normalizer.std == [1.0, 1.0, 1.0]
    assert normalizer.mean == pytest.approx(Normalizer.fit(images).mean, abs=1e-12)
    out = normalizer(images)
    mean, std = channel_stats(out)
    expected_std = channel_stats(images.to(torch.float64) / 255.0)[1]
    assert mean == pytest.approx([0.0, 0.0, 0.0], abs=1e-4)
    assert std == pytest.approx(expected_std, abs=1e-4)


def test_none_mode_only_scales_to_unit_range():
    images = known_images()
    normalizer = Normalizer.fit(images, mode="none")
    assert normalizer.mean == [0.0, 0.0, 0.0]
    assert normalizer.std == [1.0, 1.0, 1.0]
    assert torch.allclose(normalizer(images), images.float() / 255.0)


def test_constant_channel_std_is_floored_not_zero():
    images = torch.full((2, 1, 3, 3), 77, dtype=torch.uint8)
    normalizer = Normalizer.fit(images)
    assert normalizer.std == [pytest.approx(1e-3)]
    assert torch.isfinite(normalizer(images)).all()
    assert normalizer(images).abs().max().item() < 1e-3


def test_unknown_mode_raises():
    with pytest.raises(ConfigError, match="preprocess must be meanstd, mean or none; got 'zscore'"):
        Normalizer.fit(known_images(), mode="zscore")


def test_state_dict_round_trip_gives_the_same_normalizer():
    images = random_images()
    normalizer = Normalizer.fit(images)
    state = normalizer.state_dict()
    assert set(state) == {"mean", "std"}
    assert all(isinstance(v, float) for v in state["mean"] + state["std"])
    restored = Normalizer.from_state(state)
    assert restored == normalizer
    assert torch.equal(restored(images), normalizer(images))


def test_state_dict_is_a_copy():
    normalizer = Normalizer.fit(known_images())
    state = normalizer.state_dict()
    state["mean"][0] = 42.0
    assert normalizer.mean[0] == pytest.approx(0.5)
