"""The npz source through load_data: layouts, label and key errors, corrupt files, val split, subset."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from convcoach.data.sources import SourceOptions, load_data, parse_data_spec
from convcoach.errors import ConfigError


def labels_for(counts: list[int]) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts).astype(np.int64)


def save(tmp_path, name="set.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def class_counts(labels: torch.Tensor) -> dict[int, int]:
    return dict(sorted(Counter(labels.tolist()).items()))


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((20, 6, 5), (1, 6, 5)),  # NHW
        ((20, 6, 5, 1), (1, 6, 5)),  # NHWC, one channel
        ((20, 6, 5, 3), (3, 6, 5)),  # NHWC
        ((20, 3, 6, 5), (3, 6, 5)),  # NCHW
        ((20, 1, 6, 5), (1, 6, 5)),  # NCHW, one channel
    ],
)
def test_npz_layouts_become_nchw(tmp_path, shape, expected):
    x = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    x_test = x[:4]
    path = save(tmp_path, x=x, y=np.arange(20) % 2, x_test=x_test, y_test=np.array([0, 1, 0, 1]))
    bundle = load_data(f"npz:{path}", SourceOptions(), val_fraction=0.0)
    assert bundle.shape == expected
    assert tuple(bundle.train.images.shape) == (20, *expected)
    assert bundle.train.images.dtype == torch.uint8
    assert len(bundle.test) == 4
    assert bundle.val is None


def test_nhwc_pixels_land_in_the_right_channel(tmp_path):
    x = np.zeros((4, 2, 2, 3), np.uint8)
    x[..., 0], x[..., 1], x[..., 2] = 10, 20, 30
    x[1, 0, 1, 2] = 99
    path = save(tmp_path, x=x, y=np.array([0, 1, 0, 1]), x_test=x, y_test=np.array([0, 1, 0, 1]))
    images = load_data(f"npz:{path}", SourceOptions(), val_fraction=0.0).train.images
    assert images[0, :, 0, 0].tolist() == [10, 20, 30]
    assert int(images[1, 2, 0, 1]) == 99


def test_float_images_in_unit_range_are_scaled_to_uint8(tmp_path):
    x = np.full((4, 2, 2), 0.5, np.float32)
    x[0, 0, 0], x[0, 0, 1] = 0.0, 1.0
    path = save(tmp_path, x=x, y=np.array([0, 1, 0, 1]), x_test=x, y_test=np.array([0, 1, 0, 1]))
    images = load_data(f"npz:{path}", SourceOptions(), val_fraction=0.0).train.images
    assert images.dtype == torch.uint8
    assert images[0, 0, 0].tolist() == [0, 255]
    assert int(images[1, 0, 1, 1]) == 128


def test_float_images_outside_unit_range_are_rejected(tmp_path):
    path = save(tmp_path, x=np.full((4, 2, 2), 3.0), y=np.array([0, 1, 0, 1]))
    with pytest.raises(ConfigError, match=r"must lie in \[0, 1\]"):
        load_data(f"npz:{path}", SourceOptions())


def test_bad_image_shape_is_rejected_with_the_shape(tmp_path):
    path = save(tmp_path, x=np.zeros((4, 5, 2, 2), np.uint8), y=np.array([0, 1, 0, 1]))
    with pytest.raises(ConfigError, match=r"'x' has shape \(4, 5, 2, 2\)"):
        load_data(f"npz:{path}", SourceOptions())


def test_label_out_of_range_names_label_and_valid_range(tmp_path):
    x = np.zeros((6, 4, 4), np.uint8)
    path = save(
        tmp_path,
        x=x,
        y=np.array([0, 1, 2, 0, 1, 0]),
        x_test=x[:2],
        y_test=np.array([0, 1]),
        classes=np.array(["cat", "dog"]),
    )
    with pytest.raises(ConfigError) as info:
        load_data(f"npz:{path}", SourceOptions())
    message = str(info.value)
    assert "label 2" in message
    assert "out of range for 2 classes" in message
    assert "valid: 0..1" in message
    assert str(path) in message


def test_test_label_out_of_range_is_reported_for_y_test(tmp_path):
    x = np.zeros((4, 4, 4), np.uint8)
    path = save(
        tmp_path, x=x, y=np.array([0, 1, 0, 1]), x_test=x[:2], y_test=np.array([0, 5]), classes=np.array(["a", "b"])
    )
    with pytest.raises(ConfigError, match=r"label 5 in 'y_test' is out of range for 2 classes \(valid: 0..1\)"):
        load_data(f"npz:{path}", SourceOptions())


def test_negative_label_is_rejected(tmp_path):
    path = save(tmp_path, x=np.zeros((3, 4, 4), np.uint8), y=np.array([0, -1, 1]))
    with pytest.raises(ConfigError, match="negative label -1 in 'y'"):
        load_data(f"npz:{path}", SourceOptions())


def test_missing_y_key_names_the_key_and_lists_found_keys(tmp_path):
    path = save(tmp_path, x=np.zeros((3, 4, 4), np.uint8), labels=np.array([0, 1, 0]))
    with pytest.raises(ConfigError) as info:
        load_data(f"npz:{path}", SourceOptions())
    message = str(info.value)
    assert "missing array 'y'" in message
    assert "found: x, labels" in message


def test_length_mismatch_between_x_and_y(tmp_path):
    path = save(tmp_path, x=np.zeros((3, 4, 4), np.uint8), y=np.array([0, 1]))
    with pytest.raises(ConfigError, match="'x' has 3 images but 'y' has 2 labels"):
        load_data(f"npz:{path}", SourceOptions())


def test_truncated_npz_raises_config_error_naming_file(tmp_path):
    path = save(tmp_path, x=np.zeros((50, 8, 8), np.uint8), y=np.arange(50) % 2)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ConfigError) as info:
        load_data(f"npz:{path}", SourceOptions())
    message = str(info.value)
    assert str(path) in message
    assert "truncated or corrupt npz file" in message


def test_missing_npz_file_is_reported(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(ConfigError, match="npz file not found"):
        load_data(f"npz:{path}", SourceOptions())


def test_spec_parsing_accepts_prefix_and_bare_npz_path(tmp_path):
    assert parse_data_spec(f"npz:{tmp_path}/a.npz") == ("npz", f"{tmp_path}/a.npz")
    assert parse_data_spec(f"{tmp_path}/b.npz") == ("npz", f"{tmp_path}/b.npz")
    with pytest.raises(ConfigError, match="unknown dataset 'not-a-dataset'"):
        parse_data_spec("not-a-dataset")


def unbalanced(tmp_path):
    """80 training images: 40 of class 0, 20 each of classes 1 and 2; image value = its index."""
    y = labels_for([40, 20, 20])
    x = np.arange(80, dtype=np.uint8)[:, None, None].repeat(2, 1).repeat(2, 2)
    return save(tmp_path, x=x, y=y, x_test=x[:6], y_test=np.array([0, 1, 2, 0, 1, 2]))


def test_val_split_is_stratified_by_val_fraction(tmp_path):
    bundle = load_data(f"npz:{unbalanced(tmp_path)}", SourceOptions(seed=3), val_fraction=0.25)
    assert class_counts(bundle.val.labels) == {0: 10, 1: 5, 2: 5}
    assert class_counts(bundle.train.labels) == {0: 30, 1: 15, 2: 15}
    assert len(bundle.test) == 6
    train_ids = set(bundle.train.images[:, 0, 0, 0].tolist())
    val_ids = set(bundle.val.images[:, 0, 0, 0].tolist())
    assert train_ids.isdisjoint(val_ids)
    assert train_ids | val_ids == set(range(80))


def test_val_split_is_deterministic_for_a_seed(tmp_path):
    path = unbalanced(tmp_path)
    first = load_data(f"npz:{path}", SourceOptions(seed=3), val_fraction=0.25)
    again = load_data(f"npz:{path}", SourceOptions(seed=3), val_fraction=0.25)
    other = load_data(f"npz:{path}", SourceOptions(seed=4), val_fraction=0.25)
    assert torch.equal(first.val.images, again.val.images)
    assert not torch.equal(first.val.images, other.val.images)


def test_subset_has_exact_size_and_class_proportions(tmp_path):
    bundle = load_data(f"npz:{unbalanced(tmp_path)}", SourceOptions(), val_fraction=0.25, subset=20)
    assert len(bundle.train) == 20
    assert class_counts(bundle.train.labels) == {0: 10, 1: 5, 2: 5}
    assert len(bundle.val) == 20  # the validation split is carved before the subset and is not shrunk


def test_without_test_arrays_twenty_percent_is_held_out_stratified(tmp_path):
    y = labels_for([40, 20, 20])
    path = save(tmp_path, x=np.zeros((80, 4, 4), np.uint8), y=y)
    bundle = load_data(f"npz:{path}", SourceOptions(), val_fraction=0.0)
    assert class_counts(bundle.test.labels) == {0: 8, 1: 4, 2: 4}
    assert class_counts(bundle.train.labels) == {0: 32, 1: 16, 2: 16}


def test_classes_array_names_the_classes(tmp_path):
    x = np.zeros((4, 4, 4), np.uint8)
    path = save(
        tmp_path,
        x=x,
        y=np.array([0, 1, 0, 1]),
        x_test=x,
        y_test=np.array([0, 1, 0, 1]),
        classes=np.array(["cat", "dog"]),
    )
    bundle = load_data(f"npz:{path}", SourceOptions(), val_fraction=0.0)
    assert bundle.classes == ["cat", "dog"]
    assert bundle.num_classes == 2


def test_image_size_resizes_train_and_test(tmp_path):
    x = np.zeros((4, 16, 16), np.uint8)
    x[:, :, 8:] = 255  # train: black left half, white right half; test: the mirror image
    path = save(tmp_path, x=x, y=np.array([0, 1, 0, 1]), x_test=x[:, :, ::-1], y_test=np.array([0, 1, 0, 1]))
    bundle = load_data(f"npz:{path}", SourceOptions(image_size=8), val_fraction=0.0)
    assert tuple(bundle.train.images.shape) == (4, 1, 8, 8)
    assert tuple(bundle.test.images.shape) == (4, 1, 8, 8)
    # bilinear, align_corners=False, no antialiasing: output column j samples input x = 2j + 0.5, halfway
    # between columns 2j and 2j + 1, which are always on the same side of the edge: no grey column
    row = torch.tensor([0, 0, 0, 0, 255, 255, 255, 255], dtype=torch.uint8)
    assert torch.equal(bundle.train.images, row.expand(4, 1, 8, 8))
    assert torch.equal(bundle.test.images, row.flip(0).expand(4, 1, 8, 8))


def test_the_stored_shape_is_kept_beside_the_resized_one(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x=rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), y=np.arange(40) % 2)
    bundle = load_data(f"npz:{path}", SourceOptions(image_size=8), val_fraction=0.0)
    assert bundle.shape == (1, 8, 8) and bundle.source_shape == (1, 28, 28)
    assert load_data(f"npz:{path}", SourceOptions(), val_fraction=0.0).source_shape == (1, 28, 28)
