"""Seeded fuzz of every loader of user files: IDX, CIFAR pickles, npz, image folders, YAML configs and a run's
metrics.jsonl / summary.json. Each family damages valid files byte by byte (flips, cuts, insertions) and builds
hostile contents in valid containers (wrong dtypes and shapes, zero sizes, NaN, huge values, foreign pickle
globals); every mutant must end in a ConfigError or in a load that check_bundle (or the run-file check) accepts.
Any other exception, or a malicious pickle that runs, fails the family with the mutants that broke it."""

from __future__ import annotations

import os
import pickle
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from loader_files import (
    CIFAR_FILES,
    CIFAR_NAMES,
    CONFIG_YAML,
    bomb_png,
    check_bundle,
    cifar_batch,
    gzip_bytes,
    idx_arrays,
    idx_bytes,
    image_bytes,
    mutate_bytes,
    truncated_trns_png,
    write_cifar_set,
    write_idx_set,
    write_run_dir,
)

from convcoach.coach.record import RunRecord
from convcoach.config import load_config
from convcoach.data.decoded_cache import finish_writes
from convcoach.data.sources import SourceOptions, load_data
from convcoach.errors import ConfigError
from convcoach.report.run_files import load_run

SEED = 20261226
Mutant = tuple[str, Callable[[Path], Any]]  # (what it is, write it under a folder and load it)
SLOW = 10.0  # seconds: a mutant that takes longer is a finding (the YAML bomb took 110 s)
COUNTS = {"idx": 140, "cifar": 150, "npz": 130, "imagefolder": 60, "yaml": 80, "run_files": 60}  # 620 in all


def run_family(mutants: Iterator[Mutant], root: Path, check: Callable[[Any], None]) -> dict[str, int]:
    """Load every mutant; the outcome counts, after failing with every mutant that raised something other than
    a ConfigError or loaded something `check` rejects."""
    outcomes, failures = {"error": 0, "loaded": 0}, []
    for index, (name, load) in enumerate(mutants):
        start = time.perf_counter()
        try:
            check(load(root / f"m{index}"))
            outcomes["loaded"] += 1
        except ConfigError as exc:
            assert "\n" not in str(exc), f"{name}: a ConfigError of several lines: {exc}"
            outcomes["error"] += 1
        except Exception as exc:  # noqa: BLE001 - the point: anything else is a finding
            failures.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
        if time.perf_counter() - start > SLOW:
            failures.append(f"{name}: took {time.perf_counter() - start:.1f} s (a resource bomb?)")
    finish_writes()
    assert not failures, "\n".join(failures)
    return outcomes


def assert_both_outcomes(outcomes: dict[str, int], family: str) -> None:
    assert sum(outcomes.values()) == COUNTS[family]
    assert outcomes["error"] and outcomes["loaded"], outcomes  # the mutants reach both the errors and the loads


# ---------- IDX (MNIST, Fashion-MNIST) ----------


IDX_STEMS_SHORT = ["train images", "train labels", "test images", "test labels"]


def _load_mnist(folder: Path) -> Any:
    return load_data("mnist", SourceOptions(data_dir=str(folder)), val_fraction=0.0)


def idx_mutants(rng: random.Random) -> Iterator[Mutant]:
    valid = [idx_bytes(a) for a in idx_arrays()]
    for _ in range(80):
        gzipped, target = rng.random() < 0.4, rng.randrange(4)
        contents = [gzip_bytes(c) for c in valid] if gzipped else list(valid)
        contents[target], how = mutate_bytes(contents[target], rng)
        yield (f"idx {IDX_STEMS_SHORT[target]} {'gz ' if gzipped else ''}{how}",
               lambda f, c=contents, g=gzipped: _load_mnist(write_idx_set(f, c, g)))  # fmt: skip
    images = idx_arrays()[0]
    hostile_images = {
        "int8 negative": (-images.astype(np.int16) // 2).astype(np.int8),
        "int16 in range": images.astype(np.int16),
        "int16 over 255": images.astype(np.int16) * 3,
        "int32 huge": images.astype(np.int32) * 2**22,
        "float in [0, 1]": images.astype(np.float32) / 255,
        "float over 1": images.astype(np.float64),
        "float NaN": np.full(images.shape, np.nan),
        "float -inf": np.full(images.shape, -np.inf, np.float32),
        "zero height": np.zeros((20, 0, 6), np.uint8),
        "zero width": np.zeros((20, 6, 0), np.uint8),
        "no images": np.zeros((0, 6, 6), np.uint8),
        "2-D": images.reshape(20, 36),
        "4-D": images.reshape(20, 6, 6, 1),
        "fewer than labels": images[:19],
    }
    labels = idx_arrays()[1]
    hostile_labels = {
        "labels 10+": labels + 5,
        "labels float 2.7": labels + 0.7,
        "labels float whole": labels.astype(np.float32),
        "labels int8 negative": labels.astype(np.int8) - 3,
        "labels NaN": np.full(labels.shape, np.nan),
        "labels 2-D": labels.reshape(2, 10),
        "labels int32 2^31-1": np.full(labels.shape, 2**31 - 1, np.int32),
    }
    for _ in range(60):
        contents = [idx_bytes(a) for a in idx_arrays()]
        name = rng.choice(list(hostile_images) + list(hostile_labels) + ["dims lie", "bad type code", "ndim 0"])
        if name in hostile_images:
            contents[0] = idx_bytes(hostile_images[name])
        elif name in hostile_labels:
            contents[1] = idx_bytes(hostile_labels[name])
        elif name == "dims lie":
            contents[rng.choice([0, 2])] = idx_bytes(images, dims=(rng.choice([0, 1, 20, 2**32 - 1]), 6, 6))
        elif name == "bad type code":
            contents[0] = idx_bytes(images, code=rng.choice([0x00, 0x07, 0x0A, 0xFF]))
        else:
            contents[1] = idx_bytes(np.zeros((), np.uint8))
        gzipped = rng.random() < 0.3
        contents = [gzip_bytes(c) for c in contents] if gzipped else contents
        yield (
            f"idx {name}{' gz' if gzipped else ''}",
            lambda f, c=contents, g=gzipped: _load_mnist(write_idx_set(f, c, g)),
        )


def test_idx_loader_survives_damaged_and_hostile_files(tmp_path):
    assert_both_outcomes(run_family(idx_mutants(random.Random(SEED)), tmp_path, check_bundle), "idx")


# ---------- CIFAR python pickles ----------


class _Reduce:
    """Pickles as `function(*args)`: how a hostile batch calls a global of its choosing on load."""

    def __init__(self, function: Callable, *args: Any) -> None:
        self.function, self.args = function, args

    def __reduce__(self) -> tuple:
        return self.function, self.args


def _load_cifar(folder: Path) -> Any:
    return load_data("cifar10", SourceOptions(data_dir=str(folder)), val_fraction=0.0)


def _hostile_batches(marker: Path) -> dict[str, Callable[[random.Random], object]]:
    """A valid batch's 'data' or 'labels' (or the whole dict) replaced by something hostile."""
    good = cifar_batch()
    data, labels = good[b"data"], good[b"labels"]

    def with_(**changes: object) -> Callable[[random.Random], object]:
        return lambda rng: {**good, **{k.encode(): v for k, v in changes.items()}}

    return {
        "data str": with_(data="abc"),
        "data None": with_(data=None),
        "data missing": lambda rng: {b"labels": labels},
        "data list of lists": with_(data=data.tolist()),
        "data ragged": with_(data=[[1, 2], [3]]),
        "data huge ints": with_(data=[[10**30] * 3072] * 2),
        "data float 0..1": with_(data=data / 255.0),
        "data float over 255": with_(data=data * 1.5 + 1),
        "data NaN": with_(data=np.full((2, 3072), np.nan)),
        "data negative int": with_(data=data.astype(np.int16) - 300),
        "data 3071 wide": with_(data=data[:, :3071]),
        "data 4-D": with_(data=data.reshape(2, 3, 32, 32)),
        "data no rows": with_(data=np.zeros((0, 3072), np.uint8), labels=[]),
        "data complex": with_(data=data.astype(np.complex64)),
        "data bool": with_(data=data > 128),
        "data dict": with_(data={"a": 1}),
        "labels int": with_(labels=5),
        "labels dict": with_(labels={0: 1}),
        "labels str": with_(labels="01"),
        "labels float 2.7": with_(labels=[0.0, 2.7]),
        "labels float whole": with_(labels=[0.0, 2.0]),
        "labels huge": with_(labels=[0, 10**30]),
        "labels 10": with_(labels=[0, 10]),
        "labels negative": with_(labels=[-1, 0]),
        "labels NaN": with_(labels=[float("nan"), 0.0]),
        "labels too many": with_(labels=[0, 1, 2]),
        "labels nested": with_(labels=[[0], [1]]),
        "labels missing": lambda rng: {b"data": data},
        "str keys": lambda rng: {"data": data, "labels": labels},
        "int keys": lambda rng: {1: data, 2: labels},
        "non-UTF-8 key": lambda rng: {b"\xff\xfe": data, b"labels": labels},
        "not a dict": lambda rng: rng.choice([[data, labels], None, 7, "batch", (data,)]),
        "os.system": lambda rng: {b"data": _Reduce(os.system, f"touch {marker}"), b"labels": labels},
        "eval": lambda rng: {b"data": _Reduce(eval, f"open({str(marker)!r}, 'w')"), b"labels": labels},
        "getattr": lambda rng: {b"data": _Reduce(getattr, os, "system"), b"labels": labels},
        "bytearray of a size": lambda rng: {b"data": _Reduce(bytearray, 10**12), b"labels": labels},
        "array of a huge shape": lambda rng: {
            b"data": _Reduce(np.ndarray((0,)).__reduce__()[0], np.ndarray, (10**12,), b"b"),  # numpy's _reconstruct
            b"labels": labels,
        },
    }


def _hostile_metas() -> dict[str, object]:
    return {
        "meta names missing": {b"num_vis": 3072},
        "meta names str": {b"label_names": "planecar"},
        "meta names int": {b"label_names": 10},
        "meta names dict": {b"label_names": {b"a": 1}},
        "meta 3072 names": {b"label_names": [str(i).encode() for i in range(3072)]},
        "meta 9 names": {b"label_names": CIFAR_NAMES[:9]},
        "meta duplicate": {b"label_names": CIFAR_NAMES[:9] + [b"plane"]},
        "meta nested names": {b"label_names": [[n] for n in CIFAR_NAMES]},
        "meta non-UTF-8 name": {b"label_names": [b"\xff\xfe"] + CIFAR_NAMES[1:]},
        "meta array of names": {b"label_names": np.array([n.decode() for n in CIFAR_NAMES])},
    }


def cifar_mutants(rng: random.Random, marker: Path) -> Iterator[Mutant]:
    for _ in range(70):
        protocol, target = rng.choice([2, 4, 5]), rng.choice(CIFAR_FILES + ["batches.meta"])
        valid = pickle.dumps(cifar_batch(seed=3) if target != "batches.meta" else {b"label_names": CIFAR_NAMES}, 2)
        damaged, how = mutate_bytes(valid, rng)
        yield (f"cifar {target} p{protocol} {how}",
               lambda f, t=target, d=damaged, p=protocol: _load_cifar(write_cifar_set(f, {t: d}, p)))  # fmt: skip
    batches, metas = _hostile_batches(marker), _hostile_metas()
    for _ in range(80):
        name = rng.choice(list(batches) + list(metas))
        if name in batches:
            target, value = rng.choice(CIFAR_FILES), batches[name](rng)
        else:
            target, value = "batches.meta", metas[name]
        protocol = rng.choice([2, 4, 5])
        yield (f"cifar {name} in {target} p{protocol}",
               lambda f, t=target, v=value, p=protocol: _load_cifar(write_cifar_set(f, {t: v}, p)))  # fmt: skip


def test_cifar_loader_survives_damaged_and_hostile_pickles_without_running_them(tmp_path):
    marker = tmp_path / "pwned"
    outcomes = run_family(cifar_mutants(random.Random(SEED + 1), marker), tmp_path, check_bundle)
    assert not marker.exists()  # no mutant's payload ran
    assert_both_outcomes(outcomes, "cifar")


# ---------- npz ----------


def _load_npz(folder: Path, arrays: dict[str, Any] | bytes) -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "data.npz"
    if isinstance(arrays, bytes):
        path.write_bytes(arrays)
    else:
        np.savez(path, **arrays)
    return load_data(f"npz:{path}", SourceOptions(), val_fraction=0.0)


def _npz_valid(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.integers(0, 256, (30, 6, 6), dtype=np.uint8), "y": np.arange(30) % 3}


def _hostile_npz() -> dict[str, Callable[[random.Random], dict[str, Any]]]:
    x, y = _npz_valid()["x"], _npz_valid()["y"]

    def with_(**changes: Any) -> Callable[[random.Random], dict[str, Any]]:
        return lambda rng: {"x": x, "y": y, **changes}

    return {
        "x int8 negative": with_(x=(-x.astype(np.int16) // 2).astype(np.int8)),
        "x uint16 over 255": with_(x=x.astype(np.uint16) * 300),
        "x uint64 huge": with_(x=np.full(x.shape, 2**63, np.uint64)),
        "x float 0..1": with_(x=x / 255.0),
        "x float16 0..1": with_(x=(x / 255).astype(np.float16)),
        "x float over 1": with_(x=x.astype(np.float32)),
        "x NaN": with_(x=np.full(x.shape, np.nan)),
        "x inf": with_(x=np.full(x.shape, np.inf)),
        "x bool": with_(x=x > 100),
        "x complex": with_(x=x.astype(np.complex128)),
        "x str": with_(x=np.full(x.shape, "a")),
        "x datetime": with_(x=np.zeros(x.shape, "datetime64[s]")),
        "x zero height": with_(x=np.zeros((30, 0, 6), np.uint8)),
        "x zero width NHWC": with_(x=np.zeros((30, 6, 0, 3), np.uint8)),
        "x 1-D": with_(x=np.zeros(30, np.uint8)),
        "x 5-D": with_(x=np.zeros((30, 1, 6, 6, 1), np.uint8)),
        "x 2 channels": with_(x=np.zeros((30, 6, 6, 2), np.uint8)),
        "x NHWC rgb": with_(x=np.repeat(x[..., None], 3, axis=3)),
        "x empty": with_(x=np.zeros((0, 6, 6), np.uint8), y=np.zeros(0, np.int64)),
        "y float 2.7": with_(y=y + 0.7),
        "y float whole": with_(y=y.astype(np.float64)),
        "y NaN": with_(y=np.full(30, np.nan)),
        "y negative": with_(y=y - 1),
        "y uint64 2^63": with_(y=np.full(30, 2**63, np.uint64)),
        "y ids": with_(y=np.repeat([0, 1, 10**9], 10)),
        "y 2-D": with_(y=y.reshape(10, 3)),
        "y str": with_(y=y.astype(str)),
        "y bool": with_(y=y > 0),
        "y short": with_(y=y[:29]),
        "classes 0-d": with_(classes=np.array("abc")),
        "classes 2-D": with_(classes=np.array([["a", "b", "c"]])),
        "classes duplicate": with_(classes=np.array(["a", "b", "a"])),
        "classes 3072": with_(classes=np.array([f"c{i}" for i in range(3072)])),
        "classes too few": with_(classes=np.array(["a", "b"])),
        "classes ints": with_(classes=np.array([3, 1, 2])),
        "classes bytes": with_(classes=np.array([b"a", b"b", b"c"])),
        "classes objects": lambda rng: {"x": x, "y": y, "classes": np.array([{}, [], None], dtype=object)},
        "x_test alone": with_(x_test=x),
        "x_test other size": with_(x_test=np.zeros((6, 7, 7), np.uint8), y_test=np.zeros(6, np.int64)),
        "y_test out of range": with_(x_test=x[:6], y_test=np.full(6, 7)),
        "y_test float 1.5": with_(x_test=x[:6], y_test=np.full(6, 1.5)),
        "x_test NaN": with_(x_test=np.full((6, 6, 6), np.nan), y_test=np.zeros(6, np.int64)),
        "no x": lambda rng: {"y": y},
    }


def npz_mutants(rng: random.Random) -> Iterator[Mutant]:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **_npz_valid(), classes=np.array(["a", "b", "c"]))
    valid = buffer.getvalue()
    for _ in range(60):
        damaged, how = mutate_bytes(valid, rng)
        yield f"npz {how}", lambda f, d=damaged: _load_npz(f, d)
    hostile = _hostile_npz()
    for _ in range(70):
        name = rng.choice(list(hostile))
        yield f"npz {name}", lambda f, a=hostile[name](rng): _load_npz(f, a)


def test_npz_loader_survives_damaged_and_hostile_archives(tmp_path):
    assert_both_outcomes(run_family(npz_mutants(random.Random(SEED + 2)), tmp_path, check_bundle), "npz")


# ---------- image folders ----------


def _hostile_images() -> dict[str, bytes]:
    return {
        "bomb": bomb_png(),
        "truncated tRNS": truncated_trns_png(),
        "empty": b"",
        "text": b"not an image at all",
        "PNG header only": image_bytes()[:33],
    }


def imagefolder_mutants(rng: random.Random) -> Iterator[Mutant]:
    formats = [("PNG", "RGB"), ("PNG", "L"), ("PNG", "P"), ("JPEG", "RGB"), ("BMP", "RGB"), ("GIF", "P")]
    hostile = _hostile_images()
    for index in range(60):
        files: dict[str, bytes] = {}
        for cls in ("a", "b"):
            for k in range(3):
                fmt, mode = rng.choice(formats)
                files[f"{cls}/{k}.{fmt.lower()}"] = image_bytes(fmt, mode, seed=rng.randrange(1000))
        for name in rng.sample(sorted(files), rng.randint(1, 4)):
            if rng.random() < 0.6:
                files[name], _ = mutate_bytes(files[name], rng)
            else:
                files[name] = hostile[rng.choice(sorted(hostile))]
        strict, mapped = rng.random() < 0.25, rng.random() < 0.2
        yield (
            f"imagefolder #{index} strict={strict} mapped={mapped}",
            lambda f, fs=files, s=strict, m=mapped: _load_folder(f, fs, s, m),
        )


def _load_folder(folder: Path, files: dict[str, bytes], strict: bool, mapped: bool) -> Any:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    # a tiny memory limit takes the memory-mapped path of folders larger than memory
    options = SourceOptions(strict=strict, memory_limit_gb=1e-9 if mapped else 4.0, image_size=8)
    return load_data(f"imagefolder:{folder}", options, val_fraction=0.0)


def test_image_folder_loader_survives_damaged_and_hostile_images(tmp_path):
    outcomes = run_family(imagefolder_mutants(random.Random(SEED + 3)), tmp_path, check_bundle)
    assert_both_outcomes(outcomes, "imagefolder")


# ---------- YAML configs ----------


def _load_yaml(folder: Path, text: str | bytes) -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return load_config(path)


def _check_config(config: Any) -> None:
    from convcoach.config import TrainConfig

    assert isinstance(config, TrainConfig)


def _hostile_yaml() -> dict[str, str | bytes]:
    # nine levels of nine aliases under keys a config has (a repeated key keeps its last value): 9^9 strings
    laughs = ['augment: &a ["x","x","x","x","x","x","x","x","x"]'] + [
        f"tta: &{n} [" + ",".join([f"*{p}"] * 9) + "]" for p, n in zip("abcdefgh", "bcdefghi")
    ]
    return {
        "billion laughs": "\n".join(laughs) + "\naugment: *i\n",
        "one alias": "seed: &s 3\nepochs: *s\n",
        "python tag": "model: !!python/object/apply:os.system ['true']\n",
        "bad date": "seed: 2001-02-30\n",
        "deep nesting": "augment: " + "[" * 5000 + "]" * 5000 + "\n",
        "binary": bytes(range(256)),
        "UTF-16": CONFIG_YAML.encode("utf-16"),
        "latin-1": "model: caf\xe9\n".encode("latin-1"),
        "NUL": "model: cnn\0\n",
        "over 1 MiB": "# " + "x" * (1 << 20) + "\nmodel: cnn\n",
        "a list": "- model\n- cnn\n",
        "a scalar": "cnn\n",
        "int keys": "1: 2\n",
        "nested value": "lr: {a: 1}\n",
        "huge int": "epochs: " + "9" * 5000 + "\n",
        "lr .inf": "lr: .inf\n",
        "seed float": "seed: 1.5\n",
        "augment int": "augment: 5\n",
        "duplicate keys": "seed: 1\nseed: 2\n",
        "tab indent": "augment:\n\t- hflip\n",
        "binary tag": "model: !!binary AAAA\n",
        "set": "augment: !!set {hflip: null}\n",
        "empty": "",
        "BOM": "\ufeffmodel: cnn\n",
    }


def yaml_mutants(rng: random.Random) -> Iterator[Mutant]:
    for _ in range(40):
        damaged, how = mutate_bytes(CONFIG_YAML.encode(), rng)
        yield f"yaml {how}", lambda f, d=damaged: _load_yaml(f, d)
    hostile = _hostile_yaml()
    for name in list(hostile) + rng.choices(list(hostile), k=40 - len(hostile)):
        yield f"yaml {name}", lambda f, t=hostile[name]: _load_yaml(f, t)


def test_yaml_config_loader_survives_damaged_and_hostile_files(tmp_path):
    assert_both_outcomes(run_family(yaml_mutants(random.Random(SEED + 4)), tmp_path, _check_config), "yaml")


# ---------- a run's metrics.jsonl and summary.json ----------


def _load_run_files(folder: Path, name: str, data: bytes) -> Any:
    write_run_dir(folder)
    (folder / name).write_bytes(data)
    return load_run(folder), RunRecord.from_run_dir(folder)


def _check_run(loaded: Any) -> None:
    run, record = loaded
    assert isinstance(run.config, dict) and isinstance(run.summary, dict) and isinstance(run.env, dict)
    assert all(isinstance(row, dict) for row in run.rows) and isinstance(record.summary, dict)
    assert all(isinstance(row, dict) for row in record.iterations + record.epochs)


def _hostile_run_files() -> dict[str, tuple[str, bytes]]:
    return {
        "metrics binary": ("metrics.jsonl", bytes(range(256))),
        "metrics a list row": ("metrics.jsonl", b'[1, 2]\n{"kind": "iter"}\n'),
        "metrics deep": ("metrics.jsonl", b"[" * 100000 + b"]" * 100000 + b"\n"),
        "metrics 5000 digits": ("metrics.jsonl", b'{"kind": "iter", "loss": ' + b"9" * 5000 + b"}\n"),
        "metrics NaN": ("metrics.jsonl", b'{"kind": "epoch", "epoch": 0, "val_acc": NaN}\n'),
        "metrics cut": ("metrics.jsonl", b'{"kind": "iter", "step": 0}\n{"kind": "it'),
        "metrics BOM": ("metrics.jsonl", b'\xef\xbb\xbf{"kind": "iter"}\n'),
        "metrics latin-1": ("metrics.jsonl", '{"kind": "caf\xe9"}\n'.encode("latin-1")),
        "summary binary": ("summary.json", b"\x89PNG\r\n\x1a\n\x00\x00"),
        "summary list": ("summary.json", b"[1, 2]"),
        "summary deep": ("summary.json", b'{"a": ' + b"[" * 100000 + b"]" * 100000 + b"}"),
        "summary empty": ("summary.json", b""),
        "summary UTF-16": ("summary.json", '{"test_accuracy": 0.5}'.encode("utf-16")),
        "env list": ("env.json", b'["torch"]'),
        "check binary": ("check.json", b"\xff\xfe\x00"),
        "config binary": ("config.yaml", b"\xff\xd8\xff\xe0"),
        "config alias": ("config.yaml", b"seed: &s 1\nepochs: *s\n"),
    }


def run_file_mutants(rng: random.Random, folder: Path) -> Iterator[Mutant]:
    """Mutants of the files of the valid run directory `folder`."""
    for _ in range(40):
        name = rng.choice(["metrics.jsonl", "summary.json", "env.json", "check.json", "config.yaml"])
        damaged, how = mutate_bytes((folder / name).read_bytes(), rng)
        yield f"{name} {how}", lambda f, n=name, d=damaged: _load_run_files(f, n, d)
    hostile = _hostile_run_files()
    for name in list(hostile) + rng.choices(list(hostile), k=20 - len(hostile)):
        yield f"run files {name}", lambda f, h=hostile[name]: _load_run_files(f, *h)


def test_run_file_readers_survive_damaged_and_hostile_files(tmp_path):
    template = write_run_dir(tmp_path / "template")
    outcomes = run_family(run_file_mutants(random.Random(SEED + 5), template), tmp_path, _check_run)
    assert_both_outcomes(outcomes, "run_files")


def test_the_fuzz_covers_at_least_500_mutants():
    assert sum(COUNTS.values()) >= 500


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """A named set missing from its data_dir must be an error here, never a download."""

    def refuse(name, target, mirror=None):
        raise ConfigError(f"test: no download of {name}")

    monkeypatch.setattr("convcoach.data.fetch.fetch", refuse)
