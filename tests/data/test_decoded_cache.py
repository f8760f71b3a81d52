"""Image folders decode in parallel, JPEGs in draft mode, once per folder state (decoded_cache.py);
a folder too large for memory is decoded once into a memory-mapped array."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from convcoach.data import BatchLoader, Normalizer
from convcoach.data.decoded_cache import cache_key, finish_writes
from convcoach.data.imagefolder import decode_all, load_image
from convcoach.data.sources import SourceOptions, load_data
from convcoach.errors import ConfigError


def photo(seed: int, size: tuple[int, int]) -> Image.Image:
    """A smooth colour gradient with noise: JPEG-like content whose downscale is well defined."""
    rng = np.random.default_rng(seed)
    h, w = size[1], size[0]
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, np.full((h, w), 40.0 * (seed % 5))], axis=-1)
    return Image.fromarray(np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8))


def folder(root: Path, per_class: int = 12, size=(96, 80)) -> Path:
    for label in range(3):
        (root / f"c{label}").mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            photo(label * 100 + index, size).save(root / f"c{label}" / f"{index:03d}.jpg", quality=90)
    return root


def test_draft_decoding_matches_a_full_decode_within_a_few_levels(tmp_path):
    path = tmp_path / "big.jpg"
    photo(7, (640, 480)).save(path, quality=92)
    drafted = load_image(path, 3, (64, 64))
    with Image.open(path) as image:  # the full-size decode, then the same bilinear resize
        full = np.asarray(image.convert("RGB").resize((64, 64), Image.BILINEAR)).transpose(2, 0, 1)
    assert drafted.shape == (3, 64, 64)
    assert np.abs(drafted.astype(int) - full.astype(int)).mean() < 3.0


@pytest.mark.parametrize("processes", [False, True])  # threads, and forked processes (large sets)
def test_parallel_decoding_keeps_the_order_and_drops_unreadable_files(tmp_path, caplog, monkeypatch, processes):
    from convcoach.data import imagefolder

    monkeypatch.setattr(imagefolder, "PROCESS_MINIMUM", 10 if processes else 10**9)
    monkeypatch.setattr(imagefolder, "CHUNK", 7)  # several chunks, the last one short
    files = []
    for index in range(40):
        files.append(tmp_path / f"{index:02d}.png")
        Image.new("L", (5, 5), index * 6).save(files[-1])
    (tmp_path / "17.png").write_bytes(b"not an image")
    with caplog.at_level(logging.WARNING, logger="convcoach"):
        images, labels, skipped = decode_all(files, np.arange(40), 1, (5, 5), strict=False)
    assert skipped == [str(tmp_path / "17.png")] and "skipping unreadable image" in caplog.text
    expected = [i for i in range(40) if i != 17]
    assert labels.tolist() == expected and images[:, 0, 0, 0].tolist() == [i * 6 for i in expected]
    with pytest.raises(ConfigError, match=r"17\.png: unreadable image"):
        decode_all(files, np.arange(40), 1, (5, 5), strict=True)


def test_a_second_load_reads_the_cache_and_a_changed_file_makes_a_new_entry(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("CONVCOACH_CACHE", str(tmp_path / "cache"))
    root = folder(tmp_path / "photos")
    first = load_data(f"imagefolder:{root}", SourceOptions(image_size=32), val_fraction=0.0)
    finish_writes()  # the entry is written while the run starts
    entries = list((tmp_path / "cache" / "decoded").glob("*.npy"))
    assert len(entries) == 1
    with caplog.at_level(logging.INFO, logger="convcoach"):
        second = load_data(f"imagefolder:{root}", SourceOptions(image_size=32), val_fraction=0.0)
    assert "decoded images read from the cache" in caplog.text
    assert torch.equal(first.train.images, second.train.images) and torch.equal(first.test.labels, second.test.labels)
    changed = root / "c1" / "003.jpg"
    photo(999, (96, 80)).save(changed, quality=90)
    os.utime(changed, ns=(1, 1))  # a different mtime, whatever the clock's resolution
    load_data(f"imagefolder:{root}", SourceOptions(image_size=32), val_fraction=0.0)
    finish_writes()
    assert len(list((tmp_path / "cache" / "decoded").glob("*.npy"))) == 2


def test_a_damaged_cache_entry_is_decoded_again(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("CONVCOACH_CACHE", str(tmp_path / "cache"))
    root = folder(tmp_path / "photos", per_class=4)
    first = load_data(f"imagefolder:{root}", SourceOptions(image_size=16), val_fraction=0.0)
    finish_writes()
    (entry,) = (tmp_path / "cache" / "decoded").glob("*.npy")
    entry.write_bytes(entry.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="convcoach"):
        again = load_data(f"imagefolder:{root}", SourceOptions(image_size=16), val_fraction=0.0)
    assert "is damaged" in caplog.text and torch.equal(first.train.images, again.train.images)


def test_the_key_covers_paths_sizes_mtimes_labels_and_the_decoding(tmp_path):
    files = [tmp_path / "a.png", tmp_path / "b.png"]
    for f in files:
        Image.new("L", (4, 4)).save(f)
    key = cache_key(files, np.array([0, 1]), 1, (4, 4))
    assert key == cache_key(files, np.array([0, 1]), 1, (4, 4))
    assert len({key, cache_key(files, np.array([1, 0]), 1, (4, 4)), cache_key(files, np.array([0, 1]), 3, (4, 4))}) == 3
    assert key != cache_key(files, np.array([0, 1]), 1, (8, 8))


def test_a_folder_larger_than_memory_is_memory_mapped_and_batches_match_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVCOACH_CACHE", str(tmp_path / "cache"))
    root = folder(tmp_path / "photos")
    memory = load_data(f"imagefolder:{root}", SourceOptions(image_size=24), val_fraction=0.2)
    finish_writes()
    mapped = load_data(f"imagefolder:{root}", SourceOptions(image_size=24, memory_limit_gb=1e-9), val_fraction=0.2)
    assert mapped.train.mapped and mapped.train.files is None and len(mapped.train) == len(memory.train)
    assert len(list((tmp_path / "cache" / "decoded").glob("*.npy"))) == 4  # the in-memory load, mapped train/val/test
    assert torch.equal(mapped.train.images, memory.train.images) and torch.equal(mapped.val.labels, memory.val.labels)
    normalizer = Normalizer([0.5] * 3, [0.25] * 3)
    batches = [BatchLoader(split, 8, normalizer, shuffle=True, seed=3) for split in (memory.train, mapped.train)]
    for (x1, y1), (x2, y2) in zip(*batches):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_an_unreadable_file_in_a_mapped_split_is_skipped_or_with_strict_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVCOACH_CACHE", str(tmp_path / "cache"))
    root = folder(tmp_path / "photos", per_class=6)
    (root / "c2" / "000.jpg").write_bytes(b"broken")
    bundle = load_data(f"imagefolder:{root}", SourceOptions(image_size=16, memory_limit_gb=1e-9), val_fraction=0.0)
    assert len(bundle.train) + len(bundle.test) == 17 and bundle.train.mapped
    assert int(bundle.train.images.reshape(len(bundle.train), -1).max(dim=1).values.min()) > 0  # no blank row
    with pytest.raises(ConfigError, match=r"000\.jpg: unreadable image"):
        load_data(f"imagefolder:{root}", SourceOptions(image_size=16, memory_limit_gb=1e-9, strict=True))


def test_without_room_on_disk_the_files_are_streamed(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("CONVCOACH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10, 10, 0))
    root = folder(tmp_path / "photos", per_class=5)
    bundle = load_data(f"imagefolder:{root}", SourceOptions(image_size=16, memory_limit_gb=1e-9), val_fraction=0.0)
    assert bundle.train.images is None and not bundle.train.mapped and len(bundle.train.files) == 12


def test_a_folder_resized_on_decoding_keeps_its_first_files_size(tmp_path):
    bundle = load_data(f"imagefolder:{folder(tmp_path / 'photos', per_class=4)}", SourceOptions(image_size=16))
    assert bundle.shape == (3, 16, 16) and bundle.source_shape == (3, 80, 96)  # (C, H, W) of 96 x 80 photos
