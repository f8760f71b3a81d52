"""The dataset registry: a name or path becomes train/val/test uint8 tensors in memory."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from ..registry import Registry, spec_check
from . import cifar, imagefolder
from .bundle import DataBundle, RawData, SourceOptions, Split
from .decoded_cache import cached_decode, mapped_decode
from .fetch import cache_root, locate
from .idx import find_idx, read_idx
from .npz import read_npz
from .preprocess import resize_uint8
from .splits import stratified_split, stratified_subset
from .validate import image_shape, int_labels, uint8_pixels

log = logging.getLogger("convcoach")

FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


SOURCES: Registry = Registry("dataset")


def _find(name: str, options: SourceOptions, present: Callable[[Path], bool], expected: str) -> Path:
    """The folder holding dataset `name`. An explicit data_dir is the one place looked in (it or its NAME/
    subfolder): a folder without the files is an error listing them, never a silent switch to another copy;
    without one, fetch.locate's search path (and download)."""
    if not options.data_dir:
        found = locate(name, None, present)
        log.info("%s: reading the copy in %s", name, found)  # one of several places: say which
        return found
    mine = [Path(options.data_dir) / name, Path(options.data_dir)]
    found = next((folder for folder in mine if folder.is_dir() and present(folder)), None)
    if found is None:
        try:
            other = f"without --data-dir the copy in {locate(name, None, present, download=False)} would be used"
        except ConfigError:
            other = f"without --data-dir it is downloaded into {cache_root() / name}"
        raise ConfigError(
            f"dataset '{name}' not found in --data-dir {options.data_dir} (looked in {mine[0]} and {mine[1]} "
            f"for {expected}); {other}"
        )
    return found


def _idx_source(name: str, classes: list[str]):
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    expected = ", ".join(f"{stem}[.gz]" for stem in stems)

    def load(arg: str | None, options: SourceOptions) -> RawData:
        folder = _find(name, options, lambda d: all(find_idx(d, s) for s in stems), expected)
        paths = [find_idx(folder, s) for s in stems]
        train, test = _idx_split(*paths[:2], len(classes)), _idx_split(*paths[2:], len(classes))
        return RawData(*train, *test, classes, source=str(folder))

    return load


def _idx_split(image_path: Path, label_path: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """One split's pair of IDX files: (N, 1, H, W) uint8 images in 0..255 and int64 labels below `count`."""
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ConfigError(f"{image_path}: {images.shape} images do not match {labels.shape} labels")
    images = uint8_pixels(image_shape(images[:, None], image_path, "images"), image_path, "images")
    return images, int_labels(labels, label_path, "labels", count)


SOURCES.register("fashion-mnist")(_idx_source("fashion-mnist", FASHION_CLASSES))
SOURCES.register("mnist")(_idx_source("mnist", [str(d) for d in range(10)]))


def _cifar_source(name: str, folder_name: str, train: list[str], label_key: str, meta: tuple[str, str], count: int):
    """A CIFAR set of `count` classes (10 or 100, as the format declares): its meta file, when present, names
    exactly that many, and every label is below it."""

    def load(arg: str | None, options: SourceOptions) -> RawData:
        present = lambda d: (d / folder_name / train[0]).is_file() or (d / train[0]).is_file()  # noqa: E731
        root = _find(name, options, present, f"{folder_name}/{train[0]} (the extracted archive)")
        folder = root / folder_name if (root / folder_name).is_dir() else root
        tx, ty = cifar.read_split(folder, train, label_key, count)
        vx, vy = cifar.read_split(folder, ["test" if name == "cifar100" else "test_batch"], label_key, count)
        has_meta = (folder / meta[0]).is_file()
        classes = cifar.read_names(folder, *meta, count=count) if has_meta else [str(i) for i in range(count)]
        return RawData(tx, ty, vx, vy, classes, source=str(folder))

    return load


SOURCES.register("cifar10")(
    _cifar_source(
        "cifar10",
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        "labels",
        ("batches.meta", "label_names"),
        10,
    )
)
SOURCES.register("cifar100")(
    _cifar_source("cifar100", "cifar-100-python", ["train"], "fine_labels", ("meta", "fine_label_names"), 100)
)


# the sources that look in (and download to) data_dir; the others are bundled or read from their own path
READS_DATA_DIR = ("fashion-mnist", "mnist", "cifar10", "cifar100")


DIGITS_SOURCE = "scikit-learn's bundled digits (sklearn.datasets.load_digits)"


@SOURCES.register("digits")
def _digits(arg: str | None, options: SourceOptions) -> RawData:
    """scikit-learn's bundled 8x8 digits (values 0-16, scaled to 0-255); 20% is held out as test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # load_data resizes
    labels = digits.target.astype(np.int64)
    train, test = stratified_split(labels, 0.2, seed=12345)  # fixed: the test split never moves
    classes = [str(d) for d in range(10)]
    return RawData(images[train], labels[train], images[test], labels[test], classes, source=DIGITS_SOURCE)


@SOURCES.register("npz")
def _npz(arg: str | None, options: SourceOptions) -> RawData:
    """x/y arrays (optionally x_test/y_test, classes); images NHW, NHWC or NCHW, uint8 or floats in [0, 1]."""
    return read_npz(arg, options)


@SOURCES.register("imagefolder")
def _imagefolder(arg: str | None, options: SourceOptions) -> RawData:
    """One subfolder per class; train/ test/ (val/) subfolders are used as the splits when present."""
    if not arg:
        raise ConfigError("imagefolder needs a path: --data imagefolder:PATH")
    root = Path(arg)
    split_dirs = {s: root / s for s in ("train", "val", "test") if (root / s).is_dir()}
    if "train" in split_dirs:
        classes = imagefolder.list_classes(split_dirs["train"])
        listed = {s: imagefolder.list_files(d, classes) for s, d in split_dirs.items()}
    else:
        classes = imagefolder.list_classes(root)
        listed = {"train": imagefolder.list_files(root, classes)}
    all_files = [f for files, _ in listed.values() for f in files]
    channels = options.channels or imagefolder.decide_channels(all_files)
    stored = imagefolder.first_size(all_files)
    size = (options.image_size,) * 2 if options.image_size else stored
    log.info(
        "image folder %s: %d classes, %d files, %d channel(s), %dx%d",
        root,
        len(classes),
        len(all_files),
        channels,
        *size,
    )
    empty = np.empty(0, np.int64)
    raw = RawData(None, empty, None, empty, classes, shape=(channels, *size), source=str(root.resolve()))
    raw.source_shape = (channels, *stored)
    if len(all_files) * channels * size[0] * size[1] > options.memory_limit_gb * 2**30:
        # too large for memory: keep file lists, decode in DataLoader workers
        raw.train_files, raw.train_y = listed["train"]
        if "test" in listed:
            raw.test_files, raw.test_y = listed["test"]
        if "val" in listed:
            raw.val_files, raw.val_y = listed["val"]
        return raw
    for split, (files, labels) in listed.items():
        images, kept, skipped = cached_decode(files, labels, channels, size, options.strict)
        raw.skipped += skipped
        setattr(raw, f"{split}_x", images)
        setattr(raw, f"{split}_y", kept)
    return raw


def parse_data_spec(spec: str) -> tuple[str, str | None]:
    """'fashion-mnist' -> (name, None); 'npz:PATH', 'imagefolder:PATH' or a folder path -> (kind, path)."""
    if spec in SOURCES:
        return spec, None
    kind, _, rest = spec.partition(":")
    if kind in ("npz", "imagefolder") and rest:
        return kind, rest
    if Path(spec).is_dir():
        return "imagefolder", spec
    if spec.endswith(".npz"):
        return "npz", spec
    if "/" in spec or "\\" in spec or spec.startswith((".", "~")):
        raise ConfigError(f"data '{spec}': no such folder (a path must be an existing image folder or a .npz file)")
    SOURCES.get(spec)  # raises: unknown name, listing the known ones
    raise AssertionError


def check_data_spec(spec: str) -> None:
    """Fail early on a name that is neither a dataset nor an existing path."""
    parse_data_spec(spec)


def load_data(spec: str, options: SourceOptions, val_fraction: float = 0.1, subset: int | None = None) -> DataBundle:
    """Load a dataset and carve the seeded, stratified validation split (and subset) from its training set."""
    kind, arg = parse_data_spec(spec)
    if options.data_dir and kind not in READS_DATA_DIR:
        log.warning(
            "ignoring data_dir %s: '%s' does not read it (data_dir is where %s are found or downloaded)",
            options.data_dir,
            spec,
            ", ".join(READS_DATA_DIR),
        )
    raw = SOURCES.get(kind)(arg, options)
    if raw.train_files is not None:
        return _streaming_bundle(spec, raw, val_fraction, subset, options.seed, options.strict)
    # the training split is kept as row numbers of raw.train_x until the end: one copy of the images per split
    rows, train_y = np.arange(len(raw.train_y)), raw.train_y
    if raw.test_x is None:  # a flat folder: a seeded, stratified test split too
        keep, held = stratified_split(raw.train_y, 0.2, seed=options.seed + 1)
        raw.test_x, raw.test_y = raw.train_x[held], raw.train_y[held]
        rows, train_y = rows[keep], train_y[keep]
    _check_labels(train_y, len(raw.classes), spec)
    _check_labels(raw.test_y, len(raw.classes), spec)
    if raw.val_x is not None:
        val = Split(torch.from_numpy(raw.val_x), torch.from_numpy(raw.val_y))
    elif val_fraction > 0:
        keep, held = stratified_split(train_y, val_fraction, options.seed)
        val = Split(torch.from_numpy(raw.train_x[rows[held]]), torch.from_numpy(train_y[held]))
        rows, train_y = rows[keep], train_y[keep]
    else:
        val = None
    if subset:
        chosen = _subset(train_y, subset, options.seed)
        rows, train_y = rows[chosen], train_y[chosen]
    train_x = raw.train_x if np.array_equal(rows, np.arange(len(raw.train_x))) else raw.train_x[rows]
    _check_memory(spec, [train_x, raw.test_x] + ([val.images] if val else []), options)
    train = Split(conform(_owned(train_x), options), torch.from_numpy(_owned(train_y)))
    test = Split(conform(_owned(raw.test_x), options), torch.from_numpy(_owned(raw.test_y)))
    if val is not None:
        val = Split(conform(val.images.numpy(), options), val.labels)
    shape = tuple(train.images.shape[1:])
    stored = raw.source_shape or tuple(raw.train_x.shape[1:])
    return _checked(DataBundle(spec, raw.classes, train, val, test, shape, raw.skipped, raw.source, stored))


def _owned(array: np.ndarray) -> np.ndarray:
    """`array` itself when torch may share it (writable, C-contiguous), else a copy."""
    return array if array.flags.writeable and array.flags.c_contiguous else np.array(array)


def _target_shape(shape: tuple[int, ...], options: SourceOptions) -> tuple[int, int, int]:
    channels = options.channels or shape[0]
    size = (options.image_size,) * 2 if options.image_size else tuple(shape[1:])
    return (channels, *size)


def _check_memory(spec: str, arrays: list, options: SourceOptions) -> None:
    """Resizing or adding channels can multiply the bytes: refuse what will not fit the memory limit."""
    shape = _target_shape(tuple(arrays[0].shape[1:]), options)
    if shape == tuple(arrays[0].shape[1:]):
        return
    need = sum(len(a) for a in arrays) * shape[0] * shape[1] * shape[2]
    if need > options.memory_limit_gb * 2**30:
        raise ConfigError(
            f"{spec} at {'x'.join(map(str, shape))} takes {need / 2**30:.1f} GiB in memory "
            f"(--memory-limit-gb {options.memory_limit_gb:g}): use --subset N or a smaller --image-size"
        )


def conform(images: np.ndarray, options: SourceOptions, chunk: int = 512) -> torch.Tensor:
    """uint8 (N, C, H, W) at `options.image_size` (bilinear) and `options.channels` (gray replicated
    to RGB; RGB to gray by ITU-R 601 luma, as PIL's 'L'), converted in chunks to bound the float memory."""
    shape = _target_shape(tuple(images.shape[1:]), options)
    if shape == tuple(images.shape[1:]):
        return torch.from_numpy(images)
    out = torch.empty((len(images), *shape), dtype=torch.uint8)
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk]
        part = torch.from_numpy(resize_uint8(part, shape[1]) if part.shape[2:] != shape[1:] else part)
        if part.shape[1] != shape[0]:
            if shape[0] == 1:
                luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
                part = (part.float() * luma).sum(dim=1, keepdim=True)
            else:
                part = part.expand(-1, shape[0], -1, -1)
        out[start : start + chunk] = part.round().clamp(0, 255) if part.is_floating_point() else part
    return out


def _streaming_bundle(
    spec: str, raw: RawData, val_fraction: float, subset: int | None, seed: int, strict: bool
) -> DataBundle:
    files, labels = np.asarray(raw.train_files, dtype=object), raw.train_y
    if raw.test_files is None:
        keep, held = stratified_split(labels, 0.2, seed=seed + 1)
        raw.test_files, raw.test_y = list(files[held]), labels[held]
        files, labels = files[keep], labels[keep]
    val = None
    if raw.val_files is not None:
        val = Split(None, torch.from_numpy(raw.val_y), list(raw.val_files), raw.shape)
    elif val_fraction > 0:
        keep, held = stratified_split(labels, val_fraction, seed)
        val = Split(None, torch.from_numpy(labels[held]), list(files[held]), raw.shape)
        files, labels = files[keep], labels[keep]
    if subset:
        chosen = _subset(labels, subset, seed)
        files, labels = files[chosen], labels[chosen]
    train = _mapped(Split(None, torch.from_numpy(labels), list(files), raw.shape), strict)
    test = _mapped(Split(None, torch.from_numpy(np.asarray(raw.test_y)), list(raw.test_files), raw.shape), strict)
    val = _mapped(val, strict) if val is not None else None
    return _checked(
        DataBundle(spec, raw.classes, train, val, test, raw.shape, source=raw.source, source_shape=raw.source_shape)
    )


def _mapped(split: Split, strict: bool) -> Split:
    """A split too large for memory, decoded once into a memory-mapped array where the disk has room
    (decoded_cache.py); else its files, decoded per batch by DataLoader workers."""
    if not len(split):
        return split  # nothing to decode: _checked says what is missing
    channels, height, width = split.shape
    mapped = mapped_decode(split.files, split.labels.numpy(), channels, (height, width), strict)
    if mapped is None:
        return split
    images, labels, _ = mapped
    return Split(torch.from_numpy(images), torch.from_numpy(labels), shape=split.shape, mapped=True)


def _subset(labels: np.ndarray, subset: int, seed: int) -> np.ndarray:
    if subset >= len(labels):
        log.warning(
            "subset %d is not smaller than the %d training images: training on all of them", subset, len(labels)
        )
    return stratified_subset(labels, subset, seed)


def _checked(bundle: DataBundle) -> DataBundle:
    """Enough data to train and test a classifier: two classes, two training images, one test and
    (when asked for) one validation image; otherwise an error saying what is missing."""
    name = bundle.name
    if len(bundle.classes) < 2:
        raise ConfigError(
            f"{name}: {len(bundle.classes)} class ({', '.join(map(str, bundle.classes))}); "
            "a classifier needs at least 2 "
            "(an image folder: one subfolder per class)"
        )
    counts = {"training": len(bundle.train), "test": len(bundle.test)} | (
        {"validation": len(bundle.val)} if bundle.val is not None else {}
    )
    needed = {"training": 2, "test": 1, "validation": 1}
    short = [f"{count} {split}" for split, count in counts.items() if count < needed[split]]
    if short:
        raise ConfigError(
            f"{name}: too few images to split: {', '.join(short)} image(s) (need at least 2 training, 1 test"
            f"{' and 1 validation' if bundle.val is not None else ''}); add images per class"
            f"{' or set --val-fraction 0' if bundle.val is not None else ''}"
        )
    return bundle


def _check_labels(labels: np.ndarray, num_classes: int, spec: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = int(labels.max()) if labels.max() >= num_classes else int(labels.min())
        raise ConfigError(
            f"{spec}: label {bad} is out of range for {num_classes} classes (valid: 0..{num_classes - 1})"
        )


@spec_check("data")
def _check_data(value: str, config: object) -> None:
    check_data_spec(value)
