"""The dataset registry: a name or path becomes train/val/test uint8 tensors in memory."""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from ..registry import Registry, spec_check
from . import cifar, imagefolder
from .fetch import locate
from .idx import find_idx, read_idx
from .splits import stratified_split, stratified_subset

log = logging.getLogger("convcoach")

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@dataclass
class Split:
    """Images as uint8 (N, C, H, W) in memory, or `files` to stream from disk."""

    images: torch.Tensor | None
    labels: torch.Tensor
    files: list[Path] | None = None
    shape: tuple[int, int, int] | None = None  # (C, H, W) of streamed files

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class RawData:
    """What a source returns, before splitting: numpy uint8 images (N, C, H, W) and int64 labels."""

    train_x: np.ndarray | None
    train_y: np.ndarray
    test_x: np.ndarray | None
    test_y: np.ndarray
    classes: list[str]
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None
    train_files: list[Path] | None = None  # set when streaming from disk
    test_files: list[Path] | None = None
    val_files: list[Path] | None = None
    shape: tuple[int, int, int] | None = None  # (C, H, W) when streaming
    skipped: list[str] = field(default_factory=list)


@dataclass
class DataBundle:
    """The splits a run uses; the test split is read only by the final evaluation."""

    name: str
    classes: list[str]
    train: Split
    val: Split | None
    test: Split
    shape: tuple[int, int, int]
    skipped: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def streaming(self) -> bool:
        return self.train.images is None


@dataclass
class SourceOptions:
    """Where and how a dataset is read: the options of a run's config that concern its source."""

    data_dir: str | None = None
    image_size: int | None = None
    strict: bool = False
    memory_limit_gb: float = 4.0
    seed: int = 0

    @classmethod
    def from_config(cls, config: Any, **changes: Any) -> SourceOptions:
        """The options `config` (a TrainConfig or a command's flags) sets, with `changes` on top;
        a field `config` lacks keeps its default."""
        values = {f.name: getattr(config, f.name, f.default) for f in dataclasses.fields(cls)}
        return cls(**{**values, **changes})


SOURCES: Registry = Registry("dataset")


def _idx_source(name: str, classes: list[str]):
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]

    def load(arg: str | None, options: SourceOptions) -> RawData:
        folder = locate(name, options.data_dir, lambda d: all(find_idx(d, s) for s in stems))
        tx, ty, vx, vy = (read_idx(find_idx(folder, s)) for s in stems)
        for images, labels, stem in ((tx, ty, stems[0]), (vx, vy, stems[2])):
            if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
                raise ConfigError(f"{folder / stem}: {images.shape} images do not match {labels.shape} labels")
        return RawData(tx[:, None], ty.astype(np.int64), vx[:, None], vy.astype(np.int64), classes)

    return load


SOURCES.register("fashion-mnist")(_idx_source("fashion-mnist", FASHION_CLASSES))
SOURCES.register("mnist")(_idx_source("mnist", [str(d) for d in range(10)]))


def _cifar_source(name: str, folder_name: str, train: list[str], label_key: str, meta: tuple[str, str]):
    def load(arg: str | None, options: SourceOptions) -> RawData:
        root = locate(name, options.data_dir, lambda d: (d / folder_name / train[0]).is_file() or (d / train[0]).is_file())
        folder = root / folder_name if (root / folder_name).is_dir() else root
        tx, ty = cifar.read_split(folder, train, label_key)
        vx, vy = cifar.read_split(folder, ["test" if name == "cifar100" else "test_batch"], label_key)
        classes = cifar.read_names(folder, *meta) if (folder / meta[0]).is_file() else [str(i) for i in range(int(ty.max()) + 1)]
        return RawData(tx, ty, vx, vy, classes)

    return load


SOURCES.register("cifar10")(
    _cifar_source("cifar10", "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "labels", ("batches.meta", "label_names"))
)
SOURCES.register("cifar100")(
    _cifar_source("cifar100", "cifar-100-python", ["train"], "fine_labels", ("meta", "fine_label_names"))
)


# the sources that look in (and download to) data_dir; the others are bundled or read from their own path
READS_DATA_DIR = ("fashion-mnist", "mnist", "cifar10", "cifar100")


@SOURCES.register("digits")
def _digits(arg: str | None, options: SourceOptions) -> RawData:
    """scikit-learn's bundled 8x8 digits (values 0-16, scaled to 0-255); 20% is held out as test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    if options.image_size and options.image_size != 8:
        images = _resize(images, options.image_size)
    labels = digits.target.astype(np.int64)
    train, test = stratified_split(labels, 0.2, seed=12345)  # fixed: the test split never moves
    return RawData(images[train], labels[train], images[test], labels[test], [str(d) for d in range(10)])


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    tensor = torch.nn.functional.interpolate(torch.from_numpy(images).float(), size=(size, size), mode="bilinear", align_corners=False)
    return tensor.round().clamp(0, 255).to(torch.uint8).numpy()


@SOURCES.register("npz")
def _npz(arg: str | None, options: SourceOptions) -> RawData:
    """x/y arrays (optionally x_test/y_test, classes); images NHW, NHWC or NCHW, uint8 or floats in [0, 1]."""
    if not arg:
        raise ConfigError("npz needs a path: --data npz:PATH")
    path = Path(arg)
    if not path.is_file():
        raise ConfigError(f"npz file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as exc:
        raise ConfigError(f"{path}: truncated or corrupt npz file ({type(exc).__name__}: {exc})") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise ConfigError(f"{path}: missing array '{key}' (found: {', '.join(arrays) or 'none'})")
    x, y = _npz_images(arrays["x"], path, "x"), _npz_labels(arrays["y"], path, "y")
    if len(x) != len(y):
        raise ConfigError(f"{path}: 'x' has {len(x)} images but 'y' has {len(y)} labels")
    if not len(y):
        raise ConfigError(f"{path}: 'x' and 'y' are empty")
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else _index_classes(y, path)
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise ConfigError(f"{path}: has '{'x_test' if 'x_test' in arrays else 'y_test'}' without '{'y_test' if 'x_test' in arrays else 'x_test'}'; give both or neither")
    if "x_test" in arrays:
        tx, ty = _npz_images(arrays["x_test"], path, "x_test"), _npz_labels(arrays["y_test"], path, "y_test")
        if tx.shape[1:] != x.shape[1:]:
            raise ConfigError(f"{path}: 'x_test' images are {tx.shape[1:]} (C, H, W) but 'x' images are {x.shape[1:]}; store both alike")
        if len(tx) != len(ty):
            raise ConfigError(f"{path}: 'x_test' has {len(tx)} images but 'y_test' has {len(ty)} labels")
    else:
        keep, held = stratified_split(y, 0.2, seed=12345)
        x, y, tx, ty = x[keep], y[keep], x[held], y[held]
    for labels, key in ((y, "y"), (ty, "y_test")):
        if labels.size and labels.max() >= len(classes):
            raise ConfigError(f"{path}: label {int(labels.max())} in '{key}' is out of range for {len(classes)} classes (valid: 0..{len(classes) - 1})")
    if options.image_size:
        x, tx = _resize(x, options.image_size), _resize(tx, options.image_size)
    return RawData(x, y, tx, ty, classes)


def _npz_images(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    elif not (x.ndim == 4 and x.shape[1] in (1, 3)):
        raise ConfigError(f"{path}: '{key}' has shape {x.shape}; expected (N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1, 3")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:  # pixel values 0..255 in a wider integer type
        if x.size and (x.min() < 0 or x.max() > 255):
            raise ConfigError(f"{path}: integer images in '{key}' must lie in 0..255 (found {x.min()}..{x.max()}); or store floats in [0, 1]")
        return np.ascontiguousarray(x.astype(np.uint8))
    if not np.issubdtype(x.dtype, np.floating):
        raise ConfigError(f"{path}: '{key}' has dtype {x.dtype}; store uint8 (0..255) or floats in [0, 1]")
    if x.size and not np.isfinite(x).all():
        raise ConfigError(f"{path}: '{key}' holds NaN or infinite pixel values")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ConfigError(f"{path}: float images in '{key}' must lie in [0, 1] (found {x.min():.3g}..{x.max():.3g}); or store uint8")
    return np.ascontiguousarray(np.round(x.astype(np.float64) * 255).astype(np.uint8))


def _index_classes(y: np.ndarray, path: Path) -> list[str]:
    """Class names 0..max(y) when labels are class indices; labels that skip most indices look like
    ids (e.g. 3, 7, 1000000000), which would make a head of empty classes: an error saying so."""
    count, present = int(y.max()) + 1, np.unique(y)
    if count > 2 * len(present) + 10:
        raise ConfigError(f"{path}: labels run to {count - 1} but only {len(present)} distinct values occur ({', '.join(map(str, present[:5]))}"
                          f"{', ...' if len(present) > 5 else ''}); labels must be class indices 0..C-1: remap them (np.unique(y, return_inverse=True))")
    if count > len(present):
        missing = sorted(set(range(count)) - set(present.tolist()))
        log.warning("%s: classes %s have no images in 'y' (labels run 0..%d)", path, ", ".join(map(str, missing[:10])), count - 1)
    return [str(i) for i in range(count)]


def _npz_labels(y: np.ndarray, path: Path, key: str) -> np.ndarray:
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"{path}: '{key}' must be a 1-D integer array, got {y.dtype} {y.shape}")
    if y.size and y.min() < 0:
        raise ConfigError(f"{path}: negative label {int(y.min())} in '{key}' (labels must be 0..C-1)")
    return y.astype(np.int64)


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
    channels = imagefolder.decide_channels(all_files)
    size = (options.image_size,) * 2 if options.image_size else imagefolder.first_size(all_files)
    log.info("image folder %s: %d classes, %d files, %d channel(s), %dx%d", root, len(classes), len(all_files), channels, *size)
    raw = RawData(None, np.empty(0, np.int64), None, np.empty(0, np.int64), classes, shape=(channels, *size))
    if len(all_files) * channels * size[0] * size[1] > options.memory_limit_gb * 2**30:
        # too large for memory: keep file lists, decode in DataLoader workers
        raw.train_files, raw.train_y = listed["train"]
        if "test" in listed:
            raw.test_files, raw.test_y = listed["test"]
        if "val" in listed:
            raw.val_files, raw.val_y = listed["val"]
        return raw
    for split, (files, labels) in listed.items():
        images, kept, skipped = imagefolder.decode_all(files, labels, channels, size, options.strict)
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
        log.warning("ignoring data_dir %s: '%s' does not read it (data_dir is where %s are found or downloaded)",
                    options.data_dir, spec, ", ".join(READS_DATA_DIR))
    raw = SOURCES.get(kind)(arg, options)
    if raw.train_files is not None:
        return _streaming_bundle(spec, raw, val_fraction, subset, options.seed)
    if raw.test_x is None:  # a flat folder: a seeded, stratified test split too
        keep, held = stratified_split(raw.train_y, 0.2, seed=options.seed + 1)
        raw.test_x, raw.test_y = raw.train_x[held], raw.train_y[held]
        raw.train_x, raw.train_y = raw.train_x[keep], raw.train_y[keep]
    _check_labels(raw.train_y, len(raw.classes), spec)
    _check_labels(raw.test_y, len(raw.classes), spec)
    train_x, train_y = raw.train_x, raw.train_y
    if raw.val_x is not None:
        val = Split(torch.from_numpy(raw.val_x), torch.from_numpy(raw.val_y))
    elif val_fraction > 0:
        keep, held = stratified_split(train_y, val_fraction, options.seed)
        val = Split(torch.from_numpy(train_x[held]), torch.from_numpy(train_y[held]))
        train_x, train_y = train_x[keep], train_y[keep]
    else:
        val = None
    if subset:
        chosen = _subset(train_y, subset, options.seed)
        train_x, train_y = train_x[chosen], train_y[chosen]
    train = Split(torch.from_numpy(np.array(train_x)), torch.from_numpy(np.array(train_y)))
    test = Split(torch.from_numpy(np.array(raw.test_x)), torch.from_numpy(np.array(raw.test_y)))
    return _checked(DataBundle(spec, raw.classes, train, val, test, tuple(train.images.shape[1:]), raw.skipped))


def _streaming_bundle(spec: str, raw: RawData, val_fraction: float, subset: int | None, seed: int) -> DataBundle:
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
    train = Split(None, torch.from_numpy(labels), list(files), raw.shape)
    test = Split(None, torch.from_numpy(np.asarray(raw.test_y)), list(raw.test_files), raw.shape)
    return _checked(DataBundle(spec, raw.classes, train, val, test, raw.shape))


def _subset(labels: np.ndarray, subset: int, seed: int) -> np.ndarray:
    if subset >= len(labels):
        log.warning("subset %d is not smaller than the %d training images: training on all of them", subset, len(labels))
    return stratified_subset(labels, subset, seed)


def _checked(bundle: DataBundle) -> DataBundle:
    """Enough data to train and test a classifier: two classes, two training images, one test and
    (when asked for) one validation image; otherwise an error saying what is missing."""
    name = bundle.name
    if len(bundle.classes) < 2:
        raise ConfigError(f"{name}: {len(bundle.classes)} class ({', '.join(map(str, bundle.classes))}); a classifier needs at least 2 "
                          "(an image folder: one subfolder per class)")
    counts = {"training": len(bundle.train), "test": len(bundle.test)} | ({"validation": len(bundle.val)} if bundle.val is not None else {})
    needed = {"training": 2, "test": 1, "validation": 1}
    short = [f"{count} {split}" for split, count in counts.items() if count < needed[split]]
    if short:
        raise ConfigError(f"{name}: too few images to split: {', '.join(short)} image(s) (need at least 2 training, 1 test"
                          f"{' and 1 validation' if bundle.val is not None else ''}); add images per class"
                          f"{' or set --val-fraction 0' if bundle.val is not None else ''}")
    return bundle


def _check_labels(labels: np.ndarray, num_classes: int, spec: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = int(labels.max()) if labels.max() >= num_classes else int(labels.min())
        raise ConfigError(f"{spec}: label {bad} is out of range for {num_classes} classes (valid: 0..{num_classes - 1})")


@spec_check("data")
def _check_data(value: str, config: object) -> None:
    check_data_spec(value)
