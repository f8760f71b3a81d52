"""The named sources through load_data: the bundled digits, and MNIST-format and CIFAR files found in data_dir."""

from __future__ import annotations

import pickle
import struct
from collections import Counter

import numpy as np
import pytest
import torch

from convcoach.data.sources import FASHION_CLASSES, SourceOptions, load_data


def test_digits_is_the_bundled_8x8_set_with_a_fixed_test_split():
    bundle = load_data("digits", SourceOptions())  # load_data's default: 10% of the training split for validation
    # 1797 digits; each class gives round(0.2 x count) to test: 36+36+35+37+36+36+36+36+35+36 = 359
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (1295, 143, 359)
    assert bundle.shape == (1, 8, 8) and bundle.classes == [str(d) for d in range(10)]
    assert bundle.train.images.dtype == torch.uint8
    assert int(bundle.train.images.max()) == 255 and int(bundle.train.images.min()) == 0  # 0..16 scaled by 255/16
    counts = Counter(bundle.test.labels.tolist())
    assert [counts[d] for d in range(10)] == [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]
    whole = load_data("digits", SourceOptions(seed=7), val_fraction=0.0)
    assert whole.val is None and len(whole.train) == 1438
    assert torch.equal(
        whole.test.images, bundle.test.images
    )  # the seed moves the validation split, never the test split
    assert load_data("digits", SourceOptions(image_size=16), val_fraction=0.0).shape == (1, 16, 16)


def idx_file(path, array: np.ndarray) -> None:
    """An uncompressed IDX file of uint8 (type code 8)."""
    path.write_bytes(
        bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()
    )


def test_fashion_mnist_files_in_data_dir_load_with_the_class_names(tmp_path, offline):
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 256, (20, 5, 6), dtype=np.uint8), rng.integers(0, 256, (10, 5, 6), dtype=np.uint8)
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    idx_file(folder / "train-images-idx3-ubyte", train)
    idx_file(folder / "train-labels-idx1-ubyte", np.tile(np.arange(10, dtype=np.uint8), 2))
    idx_file(folder / "t10k-images-idx3-ubyte", test)
    idx_file(folder / "t10k-labels-idx1-ubyte", np.arange(10, dtype=np.uint8)[::-1].copy())
    bundle = load_data("fashion-mnist", SourceOptions(data_dir=str(tmp_path)), val_fraction=0.0)
    assert bundle.classes == FASHION_CLASSES and bundle.classes[9] == "Ankle boot"
    assert bundle.shape == (1, 5, 6) and (len(bundle.train), len(bundle.test)) == (20, 10)
    assert torch.equal(bundle.train.images[:, 0], torch.from_numpy(train))
    assert bundle.test.labels.tolist() == list(range(9, -1, -1))


def test_cifar10_batches_in_data_dir_load_as_rgb_with_the_meta_names(tmp_path, offline):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    rows = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows[name] = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": rows[name], b"labels": [len(rows) % 10, (len(rows) + 5) % 10]}, handle, protocol=2)
    names = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [n.encode() for n in names]}, handle, protocol=2)
    bundle = load_data("cifar10", SourceOptions(data_dir=str(tmp_path)), val_fraction=0.0)
    assert bundle.classes == names and bundle.shape == (3, 32, 32)
    assert (len(bundle.train), len(bundle.test)) == (10, 2)
    assert bundle.train.labels.tolist() == [1, 6, 2, 7, 3, 8, 4, 9, 5, 0]  # the five batches in order
    # a row is 1024 red, then 1024 green, then 1024 blue values, each row-major
    assert torch.equal(bundle.train.images[0], torch.from_numpy(rows["data_batch_1"][0].reshape(3, 32, 32)))
    assert torch.equal(bundle.test.images[1, 2, 0], torch.from_numpy(rows["test_batch"][1][2048:2080]))


def test_the_real_fashion_mnist_when_installed(offline):
    from convcoach.data.fetch import candidate_dirs
    from convcoach.data.idx import find_idx

    if not any(
        find_idx(folder, "t10k-labels-idx1-ubyte")
        for folder in candidate_dirs("fashion-mnist", None)
        if folder.is_dir()
    ):
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    bundle = load_data("fashion-mnist", SourceOptions())
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (
        54000,
        6000,
        10000,
    )  # 10% of 6000 per class held out
    assert bundle.shape == (1, 28, 28) and bundle.classes == FASHION_CLASSES
    assert int(bundle.test.images.max()) == 255
    assert Counter(bundle.test.labels.tolist()) == {c: 1000 for c in range(10)}
