"""Image folders: modes, transparency, channel decision, unreadable files, splits and resizing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convcoach.data.imagefolder import decide_channels, load_image
from convcoach.data.sources import SourceOptions, load_data
from convcoach.errors import ConfigError


def gray(value: int, size=(6, 6)) -> Image.Image:
    return Image.new("L", size, value)


def rgb(color=(200, 10, 30), size=(6, 6)) -> Image.Image:
    return Image.new("RGB", size, color)


def make_folder(root: Path, images: dict[str, list[Image.Image]], suffix: str = ".png") -> Path:
    for cls, items in images.items():
        folder = root / cls
        folder.mkdir(parents=True, exist_ok=True)
        for index, image in enumerate(items):
            image.save(folder / f"{index:03d}{suffix}")
    return root


def load(root: Path, **options):
    val_fraction = options.pop("val_fraction", 0.0)
    return load_data(f"imagefolder:{root}", SourceOptions(**options), val_fraction=val_fraction)


def test_transparent_rgba_pixels_composite_onto_white(tmp_path):
    image = Image.new("RGBA", (4, 4), (0, 0, 0, 0))  # fully transparent black
    image.putpixel((1, 1), (10, 20, 30, 255))  # one opaque pixel
    image.save(tmp_path / "t.png")
    array = load_image(tmp_path / "t.png", 3, (4, 4))
    assert array.shape == (3, 4, 4)
    assert array[:, 0, 0].tolist() == [255, 255, 255]
    assert array[:, 1, 1].tolist() == [10, 20, 30]


def test_half_transparent_pixel_blends_with_white(tmp_path):
    Image.new("RGBA", (2, 2), (0, 0, 0, 128)).save(tmp_path / "h.png")
    array = load_image(tmp_path / "h.png", 3, (2, 2))
    assert abs(int(array[0, 0, 0]) - 127) <= 1


def test_transparent_grayscale_la_composites_onto_white(tmp_path):
    Image.new("LA", (3, 3), (0, 0)).save(tmp_path / "la.png")
    array = load_image(tmp_path / "la.png", 1, (3, 3))
    assert array.shape == (1, 3, 3)
    assert array.min() == 255


def test_palette_with_transparent_index_composites_onto_white(tmp_path):
    image = Image.new("P", (3, 3), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (3 * 254))
    image.putpixel((2, 2), 1)
    image.info["transparency"] = 0
    image.save(tmp_path / "p.png", transparency=0)
    array = load_image(tmp_path / "p.png", 3, (3, 3))
    assert array[:, 0, 0].tolist() == [255, 255, 255]
    assert array[:, 2, 2].tolist() == [255, 0, 0]


def test_rgba_in_a_dataset_gives_white_not_black(tmp_path):
    transparent = Image.new("RGBA", (6, 6), (0, 0, 0, 0))
    root = make_folder(tmp_path, {"a": [transparent, rgb()], "b": [rgb(), rgb()]})
    bundle = load(root)
    assert bundle.shape == (3, 6, 6)
    images = np.concatenate([bundle.train.images.numpy(), bundle.test.images.numpy()])
    assert len(images) == 4
    assert sum(int(img.min() == 255) for img in images) == 1  # the transparent one, all white
    assert all(img.max() > 0 for img in images)  # nothing came out black


def test_all_grayscale_set_gives_one_channel(tmp_path):
    bilevel = Image.new("1", (6, 6), 1)
    root = make_folder(
        tmp_path, {"a": [gray(10), gray(20), bilevel], "b": [gray(30), Image.new("LA", (6, 6), (40, 255))]}
    )
    bundle = load(root)
    assert bundle.shape == (1, 6, 6)
    assert decide_channels(sorted(root.rglob("*.png"))) == 1


def test_one_rgb_image_makes_the_set_three_channels(tmp_path):
    root = make_folder(tmp_path, {"a": [gray(10), gray(20)], "b": [gray(30), rgb((1, 2, 3))]})
    bundle = load(root)
    assert bundle.shape == (3, 6, 6)
    images = np.concatenate([bundle.train.images.numpy(), bundle.test.images.numpy()])
    # grayscale images are replicated into three equal channels
    grays = [img for img in images if img[0, 0, 0] in (10, 20, 30)]
    assert len(grays) == 3
    assert all((img[0] == img[1]).all() and (img[1] == img[2]).all() for img in grays)


def test_unreadable_file_is_skipped_and_listed(tmp_path):
    root = make_folder(tmp_path, {"a": [gray(10), gray(20)], "b": [gray(30), gray(40)]})
    bad = root / "b" / "zzz_broken.png"
    bad.write_bytes(b"\x00garbage, not a png" * 10)
    bundle = load(root)
    assert bundle.skipped == [str(bad)]
    assert len(bundle.train) + len(bundle.test) == 4


def test_unreadable_file_with_strict_raises_naming_it(tmp_path):
    root = make_folder(tmp_path, {"a": [gray(10), gray(20)], "b": [gray(30), gray(40)]})
    bad = root / "a" / "broken.png"
    bad.write_bytes(b"garbage bytes")
    with pytest.raises(ConfigError, match="unreadable image") as info:
        load(root, strict=True)
    assert str(bad) in str(info.value)


def test_truncated_png_is_skipped(tmp_path):
    root = make_folder(tmp_path, {"a": [gray(10), gray(20)], "b": [gray(30), gray(40)]})
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 256, (6, 6), dtype=np.uint8))
    noisy.save(root / "a" / "cut.png")
    data = (root / "a" / "cut.png").read_bytes()
    (root / "a" / "cut.png").write_bytes(data[: len(data) - 30])
    bundle = load(root)
    assert bundle.skipped == [str(root / "a" / "cut.png")]


def test_empty_class_folder_raises_naming_it(tmp_path):
    root = make_folder(tmp_path, {"a": [gray(10)], "b": [gray(20)]})
    (root / "empty").mkdir()
    with pytest.raises(ConfigError, match="class folder has no images") as info:
        load(root)
    assert str(root / "empty") in str(info.value)


def test_folder_without_class_subfolders_raises(tmp_path):
    gray(1).save(tmp_path / "loose.png")
    with pytest.raises(ConfigError, match="no class subfolders"):
        load(tmp_path)


def test_missing_folder_raises(tmp_path):
    with pytest.raises(ConfigError, match="image folder not found"):
        load(tmp_path / "absent")


def test_train_and_test_subfolders_are_the_splits(tmp_path):
    make_folder(tmp_path / "train", {"cat": [gray(v) for v in (10, 11, 12)], "dog": [gray(v) for v in (20, 21, 22)]})
    make_folder(tmp_path / "test", {"cat": [gray(100)], "dog": [gray(200)]})
    bundle = load(tmp_path)
    assert bundle.classes == ["cat", "dog"]
    assert len(bundle.train) == 6
    assert bundle.test.images[:, 0, 0, 0].tolist() == [100, 200]
    assert bundle.test.labels.tolist() == [0, 1]
    assert sorted(bundle.train.images[:, 0, 0, 0].tolist()) == [10, 11, 12, 20, 21, 22]


def test_val_subfolder_is_used_as_the_val_split(tmp_path):
    make_folder(tmp_path / "train", {"a": [gray(1), gray(2)], "b": [gray(3), gray(4)]})
    make_folder(tmp_path / "val", {"a": [gray(50)], "b": [gray(60)]})
    make_folder(tmp_path / "test", {"a": [gray(100)], "b": [gray(200)]})
    bundle = load(tmp_path, val_fraction=0.5)
    assert bundle.val.images[:, 0, 0, 0].tolist() == [50, 60]
    assert len(bundle.train) == 4


def test_images_are_resized_to_image_size(tmp_path):
    root = make_folder(
        tmp_path, {"a": [gray(10, (10, 4)), gray(20, (3, 3))], "b": [rgb(size=(7, 9)), rgb(size=(5, 5))]}
    )
    bundle = load(root, image_size=8)
    assert bundle.shape == (3, 8, 8)
    assert tuple(bundle.train.images.shape[1:]) == (3, 8, 8)
    assert tuple(bundle.test.images.shape[1:]) == (3, 8, 8)


def test_resizing_averages_neighbouring_pixels_with_pil_bilinear(tmp_path):
    half = np.zeros((16, 16), np.uint8)
    half[:, 8:] = 255  # columns 0-7 black, 8-15 white
    root = make_folder(tmp_path, {"a": [Image.fromarray(half)] * 3, "b": [Image.fromarray(half[:, ::-1].copy())] * 3})
    bundle = load(root, image_size=8)
    # PIL's BILINEAR widens its triangle filter by the scale (2) when shrinking: output column j averages
    # input columns 2j-1..2j+2 with weights 1/8, 3/8, 3/8, 1/8, so column 3 is 255/8 = 31.9 -> 32 and column 4 is 223
    row = [0, 0, 0, 32, 223, 255, 255, 255]
    for split in (bundle.train, bundle.test):
        for image, label in zip(split.images, split.labels):
            expected = np.array(row if int(label) == 0 else row[::-1], np.uint8)
            assert np.array_equal(image[0].numpy(), np.tile(expected, (8, 1)))


def test_without_image_size_the_first_image_sets_the_size(tmp_path):
    root = make_folder(tmp_path, {"a": [gray(10, (5, 3)), gray(20, (8, 8))], "b": [gray(30, (2, 2)), gray(40, (9, 9))]})
    bundle = load(root)
    assert bundle.shape == (1, 3, 5)  # (C, H, W) from the first file: 5 wide, 3 high


def test_flat_folder_gets_a_stratified_test_split(tmp_path):
    root = make_folder(tmp_path, {"a": [gray(v) for v in range(10)], "b": [gray(v) for v in range(100, 105)]})
    bundle = load(root, seed=0)
    assert dict(Counter(bundle.test.labels.tolist())) == {0: 2, 1: 1}
    assert dict(Counter(bundle.train.labels.tolist())) == {0: 8, 1: 4}
    seen = bundle.train.images[:, 0, 0, 0].tolist() + bundle.test.images[:, 0, 0, 0].tolist()
    assert sorted(seen) == list(range(10)) + list(range(100, 105))


def test_flat_folder_test_split_is_seeded(tmp_path):
    root = make_folder(tmp_path, {"a": [gray(v) for v in range(20)], "b": [gray(v) for v in range(100, 120)]})
    first, again = load(root, seed=1), load(root, seed=1)
    assert first.test.images.tolist() == again.test.images.tolist()


def test_gray_palette_image_is_one_channel(tmp_path):
    palette = Image.new("P", (4, 4), 7)
    palette.putpalette([v for i in range(256) for v in (i, i, i)])
    root = make_folder(tmp_path, {"a": [palette, gray(1)], "b": [gray(2), gray(3)]})
    bundle = load(root)
    assert bundle.shape == (1, 4, 4)
    images = np.concatenate([bundle.train.images.numpy(), bundle.test.images.numpy()])
    assert 7 in images[:, 0, 0, 0].tolist()


def test_color_palette_image_decodes_to_its_colors(tmp_path):
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 12, 34, 56] + [0] * (3 * 254))
    root = make_folder(tmp_path, {"a": [palette, gray(1)], "b": [gray(2), gray(3)]})
    bundle = load(root)
    assert bundle.shape == (3, 4, 4)
    images = np.concatenate([bundle.train.images.numpy(), bundle.test.images.numpy()])
    colored = [img[:, 0, 0].tolist() for img in images if img[0, 0, 0] == 12]
    assert colored == [[12, 34, 56]]


def test_jpeg_and_bmp_suffixes_are_read(tmp_path):
    make_folder(tmp_path, {"a": [rgb((255, 255, 255))], "b": [rgb((0, 0, 0))]}, suffix=".jpg")
    make_folder(tmp_path, {"a": [rgb((255, 255, 255))], "b": [rgb((0, 0, 0))]}, suffix=".bmp")
    bundle = load(tmp_path)
    assert len(bundle.train) + len(bundle.test) == 4


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 32896], [65535, 65535]], dtype=np.uint16)  # 32896 = 128 * 257
    Image.fromarray(values).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as image:
        assert image.mode.startswith("I")
    array = load_image(tmp_path / "deep.png", 1, (2, 2))
    assert array[0].tolist() == [[0, 128], [255, 255]]


def test_a_single_class_is_an_error_naming_it(tmp_path):
    root = make_folder(tmp_path, {"only": [gray(v) for v in range(10, 20)]})
    with pytest.raises(ConfigError, match=r"1 class \(only\); a classifier needs at least 2"):
        load(root)


@pytest.mark.parametrize("memory_limit_gb", [8.0, 1e-9])  # in memory, and streamed from disk
def test_too_few_images_to_split_is_an_error_saying_what_is_missing(tmp_path, memory_limit_gb):
    root = make_folder(tmp_path, {"a": [gray(10)], "b": [gray(20)]})  # one image per class: none left to test on
    with pytest.raises(
        ConfigError, match=r"too few images to split: 0 test, 0 validation image\(s\) .* or set --val-fraction 0"
    ):
        load(root, val_fraction=0.1, memory_limit_gb=memory_limit_gb)
    bigger = make_folder(tmp_path / "bigger", {"a": [gray(v) for v in range(3)], "b": [gray(v) for v in range(3)]})
    bundle = load(
        bigger, val_fraction=0.1, memory_limit_gb=memory_limit_gb
    )  # 3 per class: 1 test, 1 validation, 1 training each
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (2, 2, 2)
