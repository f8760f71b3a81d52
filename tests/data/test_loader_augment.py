"""BatchLoader epochs, resume and sharding; batched augmentations and their parser."""

from __future__ import annotations

import pytest
import torch

from convcoach.data.augment import AUGMENTS, Augmenter, parse_augment
from convcoach.data.loader import BatchLoader
from convcoach.data.preprocess import Normalizer
from convcoach.data.sources import Split
from convcoach.errors import ConfigError

IDENTITY = Normalizer([0.0], [1.0])


def indexed_split(n: int) -> Split:
    """Image i is filled with the value i and has label i, so batches reveal which samples they hold."""
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return Split(images, torch.arange(n))


def epoch(loader: BatchLoader) -> list[list[int]]:
    return [labels.tolist() for _, labels in loader]


def flat(batches: list[list[int]]) -> list[int]:
    return [i for batch in batches for i in batch]


def test_shuffled_epoch_covers_every_index_exactly_once():
    loader = BatchLoader(indexed_split(23), 5, IDENTITY, shuffle=True, seed=0)
    batches = epoch(loader)
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    assert sorted(flat(batches)) == list(range(23))
    assert flat(batches) != list(range(23))


def test_images_travel_with_their_labels():
    loader = BatchLoader(indexed_split(12), 4, IDENTITY, shuffle=True, seed=3)
    for images, labels in loader:
        assert torch.allclose(images[:, 0, 0, 0] * 255.0, labels.float())


def test_next_epoch_has_a_different_order():
    loader = BatchLoader(indexed_split(23), 5, IDENTITY, shuffle=True, seed=0)
    first, second = flat(epoch(loader)), flat(epoch(loader))
    assert sorted(second) == list(range(23))
    assert first != second


def test_same_seed_gives_the_same_order_and_another_seed_a_different_one():
    a = flat(epoch(BatchLoader(indexed_split(30), 7, IDENTITY, shuffle=True, seed=4)))
    b = flat(epoch(BatchLoader(indexed_split(30), 7, IDENTITY, shuffle=True, seed=4)))
    c = flat(epoch(BatchLoader(indexed_split(30), 7, IDENTITY, shuffle=True, seed=5)))
    assert a == b
    assert a != c


def test_without_shuffle_the_order_is_sequential_every_epoch():
    loader = BatchLoader(indexed_split(7), 3, IDENTITY)
    assert epoch(loader) == [[0, 1, 2], [3, 4, 5], [6]]
    assert epoch(loader) == [[0, 1, 2], [3, 4, 5], [6]]


def test_load_state_dict_reproduces_the_same_batches():
    augment = parse_augment("hflip,translate:1")
    loader = BatchLoader(indexed_split(20), 6, IDENTITY, shuffle=True, augment=augment, seed=1)
    epoch(loader)
    state = loader.state_dict()
    expected = [(x.clone(), y.clone()) for x, y in loader]
    loader.load_state_dict(state)
    replay = list(loader)
    assert [y.tolist() for _, y in replay] == [y.tolist() for _, y in expected]
    assert all(torch.equal(x, x_expected) for (x, _), (x_expected, _) in zip(replay, expected))
    # a fresh loader restored from the state replays the same epoch too
    fresh = BatchLoader(indexed_split(20), 6, IDENTITY, shuffle=True, augment=augment, seed=99)
    fresh.load_state_dict(state)
    assert all(torch.equal(x, xe) and torch.equal(y, ye) for (x, y), (xe, ye) in zip(fresh, expected))


def test_a_state_saved_on_another_device_keeps_the_order_and_reseeds_the_augmentation(caplog):
    # a generator's state is device-specific (CUDA 16 bytes, CPU 5056): moving a run reseeds, with a warning
    augment = parse_augment("hflip")
    loader = BatchLoader(indexed_split(20), 6, IDENTITY, shuffle=True, augment=augment, seed=1)
    state = loader.state_dict()
    assert state["aug_device"] == "cpu"
    expected = [y.tolist() for _, y in loader]
    moved = BatchLoader(indexed_split(20), 6, IDENTITY, shuffle=True, augment=augment, seed=99)
    with caplog.at_level("WARNING", logger="convcoach"):
        moved.load_state_dict({**state, "aug_generator": torch.zeros(16, dtype=torch.uint8), "aug_device": "cuda"})
    assert "resumed on cpu a run saved on cuda" in caplog.text
    assert [y.tolist() for _, y in moved] == expected  # the shuffling generator was not advanced


def test_drop_last_and_len():
    split = indexed_split(10)
    dropping = BatchLoader(split, 3, IDENTITY, shuffle=True, drop_last=True)
    keeping = BatchLoader(split, 3, IDENTITY, shuffle=True, drop_last=False)
    assert len(dropping) == 3
    assert len(keeping) == 4
    dropped = epoch(dropping)
    assert [len(b) for b in dropped] == [3, 3, 3]
    assert len(set(flat(dropped))) == 9
    assert [len(b) for b in epoch(keeping)] == [3, 3, 3, 1]


def test_len_for_exact_multiple():
    assert len(BatchLoader(indexed_split(12), 4, IDENTITY, drop_last=True)) == 3
    assert len(BatchLoader(indexed_split(12), 4, IDENTITY, drop_last=False)) == 3


def test_ranks_get_disjoint_equal_shares_of_one_permutation():
    shares = [
        flat(epoch(BatchLoader(indexed_split(11), 2, IDENTITY, shuffle=True, seed=2, rank=r, world_size=2)))
        for r in (0, 1)
    ]
    assert len(shares[0]) == len(shares[1]) == 5
    assert set(shares[0]).isdisjoint(shares[1])
    assert len(BatchLoader(indexed_split(11), 2, IDENTITY, rank=1, world_size=2)) == 3


def test_batches_are_normalized():
    loader = BatchLoader(indexed_split(4), 4, Normalizer([0.5], [0.25]))
    images, _ = next(iter(loader))
    expected = (torch.arange(4).float() / 255.0 - 0.5) / 0.25
    assert torch.allclose(images[:, 0, 0, 0], expected, atol=1e-6)


def test_channels_last_output():
    images = torch.zeros(4, 3, 5, 5, dtype=torch.uint8)
    loader = BatchLoader(
        Split(images, torch.zeros(4, dtype=torch.long)), 2, Normalizer([0.0] * 3, [1.0] * 3), channels_last=True
    )
    x, _ = next(iter(loader))
    assert x.is_contiguous(memory_format=torch.channels_last)


# --- augmentations -----------------------------------------------------------------------------


def batch(seed: int = 0, shape=(6, 3, 5, 7)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_hflip_with_p1_mirrors_and_twice_is_identity():
    x = batch()
    flip = parse_augment("hflip:1")
    once = flip(x, gen())
    assert torch.equal(once, x.flip(3))
    assert torch.equal(flip(once, gen(1)), x)


def test_vflip_with_p1_mirrors_top_bottom():
    x = batch()
    assert torch.equal(parse_augment("vflip:1")(x, gen()), x.flip(2))


def test_default_hflip_flips_some_samples_and_not_others():
    x = batch(shape=(64, 1, 2, 3))
    out = parse_augment("hflip")(x, gen())
    flipped = [torch.equal(o, s.flip(2)) for o, s in zip(out, x)]
    same = [torch.equal(o, s) for o, s in zip(out, x)]
    assert all(f or s for f, s in zip(flipped, same))
    assert 10 < sum(flipped) < 54


def test_translate_moves_a_one_hot_pixel_by_at_most_pad():
    n, size, centre = 200, 9, 4
    x = torch.zeros(n, 1, size, size)
    x[:, 0, centre, centre] = 1.0
    out = parse_augment("translate:2")(x, gen())
    shifts = set()
    for sample in out:
        assert sample.sum().item() == 1.0  # the pixel is moved, never lost or duplicated
        row, col = divmod(int(sample.flatten().argmax()), size)
        shifts.add((row - centre, col - centre))
    assert all(abs(dy) <= 2 and abs(dx) <= 2 for dy, dx in shifts)
    assert {dy for dy, _ in shifts} == {-2, -1, 0, 1, 2}
    assert {dx for _, dx in shifts} == {-2, -1, 0, 1, 2}


def shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """image moved down by dy and right by dx, zero filled."""
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        ..., max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def test_each_translated_sample_is_its_input_shifted_by_at_most_two():
    x = batch(shape=(16, 3, 6, 8)) + 5.0  # no zeros, so the zero fill shows the shift
    out = parse_augment("translate:2")(x, gen(3))
    for sample, original in zip(out, x):
        matches = [
            (dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(sample, shifted(original, dy, dx))
        ]
        assert len(matches) == 1


def test_crop_is_an_alias_of_translate():
    x = batch()
    assert torch.equal(parse_augment("crop:2")(x, gen(4)), parse_augment("translate:2")(x, gen(4)))


def test_parse_augment_accepts_list_string_and_none():
    assert parse_augment(["hflip", "translate:2"]).specs == ["hflip", "translate:2"]
    assert parse_augment("hflip,translate:2").specs == ["hflip", "translate:2"]
    assert parse_augment("none").ops == []
    assert parse_augment(None).ops == []
    assert parse_augment([]).ops == []


def test_no_op_augmenter_is_not_applied_by_the_loader():
    loader = BatchLoader(indexed_split(4), 2, IDENTITY, augment=Augmenter([], []))
    assert loader.augment is None


def test_unknown_augmentation_lists_the_known_ops():
    with pytest.raises(ConfigError) as info:
        parse_augment("hflip,bogus")
    message = str(info.value)
    assert "unknown augmentation 'bogus'" in message
    assert f"known: {', '.join(AUGMENTS.names())}" in message
    for name in ("hflip", "vflip", "translate", "crop"):
        assert name in message


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("hflip:1.5", "augmentation 'hflip:1.5': magnitude 1.5 is outside [0.0, 1.0]"),
        ("vflip:-0.1", "augmentation 'vflip:-0.1': magnitude -0.1 is outside [0.0, 1.0]"),
        ("translate:65", "augmentation 'translate:65': magnitude 65.0 is outside [0, 64]"),
    ],
)
def test_magnitude_out_of_range_names_the_spec(spec, fragment):
    with pytest.raises(ConfigError) as info:
        parse_augment(spec)
    assert fragment in str(info.value)


def test_non_numeric_magnitude_names_the_spec():
    with pytest.raises(ConfigError, match="augmentation 'translate:two': 'two' is not a number"):
        parse_augment("translate:two")
