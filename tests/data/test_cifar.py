"""CIFAR pickle batches: decoding, corrupt files, and the unpickler that refuses foreign globals."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from convcoach.data.cifar import read_batch, read_names, read_split
from convcoach.errors import ConfigError


def fake_batch(n: int, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, size=n)]


def write_batch(path, data, labels, label_key=b"labels", protocol=2):
    with open(path, "wb") as handle:
        pickle.dump({b"batch_label": b"fake", label_key: labels, b"data": data}, handle, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
def test_read_split_returns_nchw_uint8_images_and_int64_labels(tmp_path, protocol):
    data, labels = fake_batch(5)
    write_batch(tmp_path / "data_batch_1", data, labels, protocol=protocol)
    images, out_labels = read_split(tmp_path, ["data_batch_1"], "labels")
    assert images.shape == (5, 3, 32, 32)
    assert images.dtype == np.uint8
    assert out_labels.dtype == np.int64
    assert out_labels.tolist() == labels
    # CIFAR rows are 1024 red, then 1024 green, then 1024 blue values, row-major
    np.testing.assert_array_equal(images[2, 1, 0, :], data[2, 1024:1056])
    np.testing.assert_array_equal(images[4, 2, 31, 31], data[4, 3071])


def test_read_split_concatenates_batches_in_order(tmp_path):
    first, first_labels = fake_batch(3, seed=1)
    second, second_labels = fake_batch(2, seed=2)
    write_batch(tmp_path / "a", first, first_labels)
    write_batch(tmp_path / "b", second, second_labels)
    images, labels = read_split(tmp_path, ["a", "b"], "labels")
    assert images.shape == (5, 3, 32, 32)
    assert labels.tolist() == first_labels + second_labels
    np.testing.assert_array_equal(images[3].reshape(-1), second[0])


def test_cifar100_fine_labels_key(tmp_path):
    data, labels = fake_batch(4)
    write_batch(tmp_path / "train", data, labels, label_key=b"fine_labels")
    _, out = read_split(tmp_path, ["train"], "fine_labels")
    assert out.tolist() == labels


def test_missing_label_key_raises_naming_file_and_key(tmp_path):
    data, labels = fake_batch(2)
    write_batch(tmp_path / "train", data, labels, label_key=b"coarse_labels")
    with pytest.raises(ConfigError, match="missing 'data' or 'fine_labels'") as info:
        read_split(tmp_path, ["train"], "fine_labels")
    assert str(tmp_path / "train") in str(info.value)


def test_wrong_row_length_raises_with_shape(tmp_path):
    write_batch(tmp_path / "b", np.zeros((2, 100), np.uint8), [0, 1])
    with pytest.raises(ConfigError, match=r"shape \(2, 100\), expected \(N, 3072\)"):
        read_split(tmp_path, ["b"], "labels")


def test_corrupt_file_raises_config_error_naming_file(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(b"this is not a pickle at all")
    with pytest.raises(ConfigError, match="truncated or corrupt CIFAR pickle") as info:
        read_split(tmp_path, ["data_batch_1"], "labels")
    assert str(path) in str(info.value)


def test_truncated_pickle_raises_config_error_naming_file(tmp_path):
    path = tmp_path / "data_batch_1"
    data, labels = fake_batch(3)
    write_batch(path, data, labels)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ConfigError, match="truncated or corrupt") as info:
        read_batch(path)
    assert str(path) in str(info.value)


def test_missing_batch_file_raises_file_not_found(tmp_path):
    with pytest.raises(ConfigError, match="file not found") as info:
        read_split(tmp_path, ["data_batch_9"], "labels")
    assert str(tmp_path / "data_batch_9") in str(info.value)


def test_non_dict_pickle_is_rejected(tmp_path):
    path = tmp_path / "list_batch"
    path.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(ConfigError, match="expected a CIFAR batch dictionary"):
        read_batch(path)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("protocol", [2, 4])
def test_pickle_with_disallowed_global_is_refused_and_not_executed(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _Exploit(marker), b"labels": [0]}, protocol=protocol))
    assert b"system" in path.read_bytes()  # the payload really references os.system
    with pytest.raises(ConfigError, match="CIFAR pickle") as info:
        read_batch(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_read_names_decodes_byte_strings(tmp_path):
    with open(tmp_path / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [b"airplane", b"automobile"], b"num_vis": 3072}, handle, protocol=2)
    assert read_names(tmp_path, "batches.meta", "label_names") == ["airplane", "automobile"]
