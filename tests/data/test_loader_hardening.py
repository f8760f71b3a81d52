"""The audit's hostile inputs (issue 26), one test each: every loader answers a one-line ConfigError naming the
file and what is valid (exit 2 from the CLI), or loads correctly; none crashes or silently loads wrong data."""

from __future__ import annotations

import json
import logging
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_blobs, small_config
from loader_files import (
    CIFAR_NAMES,
    bomb_png,
    cifar_batch,
    idx_arrays,
    idx_bytes,
    image_bytes,
    truncated_trns_png,
    write_cifar_set,
    write_idx_set,
    write_run_dir,
)

from convcoach import Trainer
from convcoach.cli import main
from convcoach.coach.record import RunRecord
from convcoach.data.cifar import read_split
from convcoach.data.sources import SourceOptions, load_data
from convcoach.errors import ConfigError
from convcoach.files import load_yaml
from convcoach.infer import load_trained, predict_paths
from convcoach.report.run_files import load_run


def cifar(folder: Path, **files: object):
    """load_data on a CIFAR-10 folder whose named files are replaced by `files` (batch dicts)."""
    write_cifar_set(folder, {name.replace("meta", "batches.meta"): value for name, value in files.items()})
    return load_data("cifar10", SourceOptions(data_dir=str(folder)), val_fraction=0.0)


def npz(tmp_path: Path, **arrays: object):
    np.savez(tmp_path / "data.npz", **arrays)
    return load_data(f"npz:{tmp_path / 'data.npz'}", SourceOptions(), val_fraction=0.0)


def mnist(tmp_path: Path, arrays: list[np.ndarray]):
    write_idx_set(tmp_path / "mnist", [idx_bytes(a) for a in arrays])
    return load_data("mnist", SourceOptions(data_dir=str(tmp_path)), val_fraction=0.0)


# 1. CIFAR batches with hostile contents


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({b"data": "abc"}, r"data_batch_1: 'data' must be a numeric array, found <U3 values"),
        ({b"data": None}, r"'data' must be a numeric array, found NoneType"),
        ({b"labels": 5}, r"'labels' must be a 1-D integer array, got int64 \(\)"),
        ({b"labels": {0: 1}}, r"'labels' must be a numeric array, found dict"),
        ({b"labels": [0, 10**30]}, r"'labels' must be a numeric array, found list of mixed values, non-numbers or "),
        ({b"data": [[10**30] * 3072] * 2}, r"'data' must be a numeric array, found list of mixed values"),
        ({b"labels": [0, 10]}, r"label 10 in 'labels' is out of range for 10 classes \(valid: 0\.\.9\)"),
    ],
)
def test_cifar_batches_with_hostile_data_or_labels_are_named_errors(tmp_path, offline, changes, message):
    with pytest.raises(ConfigError, match=message):
        cifar(tmp_path, data_batch_1={**cifar_batch(), **changes})


def test_a_cifar_batch_without_data_is_a_named_error(tmp_path, offline):
    with pytest.raises(ConfigError, match=r"test_batch: missing 'data' or 'labels' in CIFAR batch"):
        cifar(tmp_path, test_batch={b"labels": [0, 1]})


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({b"num_vis": 3072}, r"batches\.meta: missing 'label_names' in CIFAR meta file \(found: num_vis\)"),
        ({b"label_names": "planecar"}, r"'label_names' must be a list of class names, found str"),
        ({b"label_names": 10}, r"'label_names' must be a list of class names, found int"),
        # 12. a meta with 3,072 names would build a 3,072-class head for 10 classes
        ({b"label_names": [b"%d" % i for i in range(3072)]}, r"holds 3072 class names; this set has 10 classes"),
        # 13. duplicate names
        ({b"label_names": CIFAR_NAMES[:9] + [b"cat"]}, r"class name 'cat' appears twice in 'label_names'"),
    ],
)
def test_cifar_meta_files_must_name_the_ten_classes_once_each(tmp_path, offline, meta, message):
    with pytest.raises(ConfigError, match=message):
        cifar(tmp_path, meta=meta)


def test_cifar_without_a_meta_file_has_the_ten_classes_the_format_declares(tmp_path, offline):
    write_cifar_set(tmp_path)
    (tmp_path / "batches.meta").unlink()
    bundle = load_data("cifar10", SourceOptions(data_dir=str(tmp_path)), val_fraction=0.0)
    assert bundle.classes == [str(i) for i in range(10)]  # not max(label) + 1 classes


def test_the_cifar_unpickler_refuses_allocations_the_file_does_not_hold(tmp_path):
    class Reduce:
        def __init__(self, *call):
            self.call = call

        def __reduce__(self):
            return self.call[0], self.call[1:]

    reconstruct = np.ndarray((0,)).__reduce__()[0]  # numpy's _reconstruct, as ndarray.__reduce__ names it
    hostile = [("size", Reduce(bytearray, 10**12)), ("shape", Reduce(reconstruct, np.ndarray, (10**12,), b"b"))]
    for name, value in hostile:
        (tmp_path / name).write_bytes(pickle.dumps({b"data": value, b"labels": [0]}, protocol=2))
        start = time.perf_counter()
        with pytest.raises(ConfigError, match=rf"{name}: truncated or corrupt CIFAR pickle \(UnpicklingError\)"):
            read_split(tmp_path, [name], "labels")
        assert time.perf_counter() - start < 1.0


# 9, 10. float labels and pixels out of range


def test_float_labels_must_be_whole_numbers(tmp_path, offline):
    with pytest.raises(ConfigError, match=r"data_batch_1: label 2\.7 in 'labels' is not a whole number"):
        cifar(tmp_path, data_batch_1={**cifar_batch(), b"labels": [0.0, 2.7]})
    x, y = make_blobs(10)
    with pytest.raises(ConfigError, match=r"data\.npz: label 2\.7 in 'y' is not a whole number"):
        npz(tmp_path, x=x, y=np.where(y == 2, 2.7, y))
    bundle = npz(tmp_path, x=x, y=y.astype(np.float64))  # 2.0 is class 2
    assert bundle.num_classes == 3 and sorted(set(bundle.train.labels.tolist())) == [0, 1, 2]


def test_float_pixels_above_255_are_an_error_not_wrapped(tmp_path, offline):
    data = np.full((2, 3072), 300.0)
    with pytest.raises(ConfigError, match=r"float images in 'data' must lie in \[0, 1\] \(found 300\.\.300\)"):
        cifar(tmp_path, data_batch_1={**cifar_batch(), b"data": data})
    bundle = cifar(tmp_path, data_batch_1={**cifar_batch(), b"data": np.full((2, 3072), 0.5)})
    assert int(bundle.train.images[0].max()) == 128  # floats in [0, 1] are scaled, as npz's


# 2. npz


def test_npz_classes_as_a_0d_array_duplicates_or_thousands_of_names_are_errors(tmp_path):
    x, y = make_blobs(10)
    with pytest.raises(ConfigError, match=r"'classes' must be a list of class names, found an array of shape \(\)"):
        npz(tmp_path, x=x, y=y, classes=np.array("abc"))
    with pytest.raises(ConfigError, match=r"class name 'a' appears twice in 'classes'"):
        npz(tmp_path, x=x, y=y, classes=np.array(["a", "b", "a"]))
    with pytest.raises(ConfigError, match=r"'classes' names 3072 classes but only 3 distinct values occur \(0, 1, 2\)"):
        npz(tmp_path, x=x, y=y, classes=np.array([f"c{i}" for i in range(3072)]))


@pytest.mark.parametrize("shape", [(30, 0, 8), (30, 8, 0), (30, 0, 8, 3)])
def test_npz_images_of_zero_size_are_an_error(tmp_path, shape):
    with pytest.raises(ConfigError, match=r"data\.npz: 'x' holds images of shape .*; height and width must be >= 1"):
        npz(tmp_path, x=np.zeros(shape, np.uint8), y=np.arange(30) % 3)


# 3, 11. IDX


def test_idx_images_of_any_type_code_load_within_0_255_or_are_errors(tmp_path, offline):
    arrays = idx_arrays()
    for stored in (arrays[0].astype(np.int16), arrays[0].astype(">i4"), arrays[0] / 255.0):  # big-endian on disk
        bundle = mnist(tmp_path, [stored, *arrays[1:]])
        assert np.array_equal(bundle.train.images[:, 0].numpy(), arrays[0])
    with pytest.raises(ConfigError, match=r"train-images-idx3-ubyte: integer images in 'images' must lie in 0\.\.255"):
        mnist(tmp_path, [arrays[0].astype(np.int8) - 100, *arrays[1:]])  # 11: negative int8 pixels
    with pytest.raises(ConfigError, match=r"float images in 'images' must lie in \[0, 1\] \(found 0\.\.255\)"):
        mnist(tmp_path, [arrays[0].astype(np.float32), *arrays[1:]])
    with pytest.raises(ConfigError, match=r"'images' holds images of shape \(1, 0, 6\); height and width must be"):
        mnist(tmp_path, [np.zeros((20, 0, 6), np.uint8), *arrays[1:]])


def test_a_gzip_idx_file_is_read_no_further_than_its_header_promises(tmp_path, offline):
    import gzip

    arrays = idx_arrays()
    contents = [idx_bytes(a) for a in arrays]
    contents[0] += bytes(50_000_000)  # 50 MB of zeros beyond the promised 720 bytes: a 50 KB gzip
    write_idx_set(tmp_path / "mnist", [gzip.compress(c, 1) for c in contents], gzipped=True)
    with pytest.raises(ConfigError, match=r"train-images-idx3-ubyte\.gz: .* header promises 720 data bytes, found 721"):
        load_data("mnist", SourceOptions(data_dir=str(tmp_path)), val_fraction=0.0)


# 4, 5. hostile images: a decompression bomb, a truncated tRNS chunk


@pytest.mark.parametrize(("name", "data"), [("bomb", bomb_png()), ("trns", truncated_trns_png())])
def test_image_folders_skip_a_bomb_or_a_truncated_trns_chunk_or_fail_under_strict(tmp_path, caplog, name, data):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for k in range(4):
            (tmp_path / cls / f"{k}.png").write_bytes(image_bytes(seed=k))
    (tmp_path / "a" / "0.png").write_bytes(data)
    expected = "exceeds limit of 178956970 pixels" if name == "bomb" else "Truncated tRNS chunk"
    with caplog.at_level(logging.WARNING, logger="convcoach"):
        bundle = load_data(f"imagefolder:{tmp_path}", SourceOptions(), val_fraction=0.0)
    assert bundle.skipped == [str(tmp_path / "a" / "0.png")] and expected in caplog.text
    with pytest.raises(ConfigError, match=r"a/0\.png: unreadable image"):
        load_data(f"imagefolder:{tmp_path}", SourceOptions(strict=True, image_size=7), val_fraction=0.0)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    x, y = make_blobs(20)
    np.savez(root / "blobs.npz", x=x, y=y)
    Trainer(small_config(root / "blobs.npz", root / "run", epochs=1, report=False, monitors=False)).fit()
    return root / "run"


def test_predict_lists_a_bomb_and_a_truncated_trns_chunk_as_unreadable(trained_run, tmp_path, capsys):
    (tmp_path / "bomb.png").write_bytes(bomb_png())
    (tmp_path / "trns.png").write_bytes(truncated_trns_png())
    (tmp_path / "good.png").write_bytes(image_bytes("PNG", "L"))
    rows = list(predict_paths(load_trained(trained_run / "best.pt"), [tmp_path]))
    errors = {Path(row["file"]).name: row["error"] for row in rows}
    assert errors["good.png"] is None and "DecompressionBombError" in errors["bomb.png"]
    assert errors["trns.png"] == "ValueError: Truncated tRNS chunk"
    assert main(["predict", "--checkpoint", str(trained_run), str(tmp_path / "bomb.png"), "--strict"]) == 2
    assert capsys.readouterr().err.startswith(f"convcoach: error: {tmp_path / 'bomb.png'}: unreadable image (Image")


# 6. unreadable folders and config files (root reads anything: the errors are raised by a stand-in)


def test_an_unreadable_class_folder_is_named(tmp_path, monkeypatch):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "0.png").write_bytes(image_bytes())
    listing = Path.iterdir

    def iterdir(self):
        if self.name == "b":
            raise PermissionError(13, "Permission denied", str(self))
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(ConfigError, match=rf"^{tmp_path / 'b'}: cannot list the folder \(Permission denied\)$"):
        load_data(f"imagefolder:{tmp_path}", SourceOptions())


def test_an_unreadable_config_file_is_named(tmp_path, monkeypatch, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("epochs: 1\n")

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("convcoach.files.open", denied, raising=False)
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err == f"convcoach: error: {config}: cannot read the config file (Permission denied)\n"


# 7, 8. binary or oversized files, YAML aliases


def test_binary_config_metrics_and_summary_files_are_named_errors(tmp_path, capsys):
    (tmp_path / "c.yaml").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert main(["train", "--config", str(tmp_path / "c.yaml")]) == 2
    assert "c.yaml: not UTF-8 text (byte 0x89 at offset 0); a config file must be UTF-8 text" in capsys.readouterr().err
    for name, what in [("metrics.jsonl", "metrics log"), ("summary.json", "JSON file")]:
        run = write_run_dir(tmp_path / name)
        (run / name).write_bytes('{"loss": "caf\xe9"}\n'.encode("latin-1"))
        message = rf"{name}: not UTF-8 text \(byte 0xe9 at offset 13\); a {what} must be UTF-8 text"
        for reader in (load_run, RunRecord.from_run_dir):
            with pytest.raises(ConfigError, match=message):
                reader(run)


def test_yaml_aliases_are_refused_so_a_billion_laughs_costs_nothing(tmp_path):
    laughs = ['augment: &a ["x","x","x","x","x","x","x","x","x"]']
    laughs += [f"tta: &{n} [" + ",".join([f"*{p}"] * 9) + "]" for p, n in zip("abcdefgh", "bcdefghi")]
    (tmp_path / "laughs.yaml").write_text("\n".join(laughs) + "\naugment: *i\n")  # 0.3 KB, 9^9 strings
    start = time.perf_counter()
    message = r"laughs\.yaml: YAML alias \*a at line 2: config files may not use aliases; write the value out"
    with pytest.raises(ConfigError, match=message):
        load_yaml(tmp_path / "laughs.yaml")
    assert time.perf_counter() - start < 1.0
    (tmp_path / "anchor.yaml").write_text("seed: &s 3\n")  # an anchor alone expands nothing
    assert load_yaml(tmp_path / "anchor.yaml") == {"seed": 3}


def test_a_config_file_over_1_mib_is_refused_before_parsing(tmp_path):
    (tmp_path / "big.yaml").write_text("# " + "x" * (1 << 20) + "\nepochs: 1\n")
    with pytest.raises(ConfigError, match=r"big\.yaml: over 1,048,576 bytes, the most a config file may hold"):
        load_yaml(tmp_path / "big.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [("seed: 2001-02-30\n", r"not valid YAML \(day is out of range for month\)"),
     ("augment: " + "[" * 3000 + "]" * 3000, r"not valid YAML \(maximum recursion depth exceeded")],
)  # fmt: skip
def test_yaml_values_python_cannot_build_are_named_errors(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=rf"c\.yaml: {message}"):
        load_yaml(tmp_path / "c.yaml")


def test_json_nested_too_deeply_or_with_huge_numbers_is_a_named_error(tmp_path):
    run = write_run_dir(tmp_path / "run")
    (run / "summary.json").write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ConfigError, match=r"summary\.json: not valid JSON \(maximum recursion depth exceeded"):
        load_run(run)
    write_run_dir(run)
    (run / "metrics.jsonl").write_text('{"kind": "iter", "loss": ' + "9" * 5000 + "}\n")
    assert load_run(run).unreadable_rows == 1  # counted as a damaged line, as a cut one is
    with pytest.raises(ConfigError, match=r"metrics\.jsonl:1: not a JSON line"):
        RunRecord.from_run_dir(run)


# 13. image folders whose names differ only in case


def test_class_folders_differing_only_in_case_are_warned_about(tmp_path, caplog):
    for cls in ("Cat", "cat"):  # EMNIST-like classes may really differ in case: a warning, not an error
        (tmp_path / cls).mkdir()
        for k in range(3):
            (tmp_path / cls / f"{k}.png").write_bytes(image_bytes(seed=k))
    with caplog.at_level(logging.WARNING, logger="convcoach"):
        bundle = load_data(f"imagefolder:{tmp_path}", SourceOptions(), val_fraction=0.0)
    assert bundle.classes == ["Cat", "cat"]
    assert f"{tmp_path}: class folders 'Cat' and 'cat' differ only in case" in caplog.messages


# 14. where the data came from


def test_an_explicit_data_dir_without_the_dataset_is_an_error_not_a_fallback(tmp_path, offline, monkeypatch):
    other = tmp_path / "elsewhere"
    write_idx_set(other / "mnist", [idx_bytes(a) for a in idx_arrays()])
    monkeypatch.setenv("CONVCOACH_DATA", str(other))  # a copy the search path would find
    (tmp_path / "empty").mkdir()
    message = (
        rf"dataset 'mnist' not found in --data-dir {tmp_path / 'empty'} \(looked in {tmp_path / 'empty' / 'mnist'} "
        rf"and {tmp_path / 'empty'} for train-images-idx3-ubyte\[\.gz\], .*\); without --data-dir the copy in "
        rf"{other / 'mnist'} would be used$"
    )
    with pytest.raises(ConfigError, match=message):
        load_data("mnist", SourceOptions(data_dir=str(tmp_path / "empty")))


def test_the_copy_found_on_the_search_path_is_logged_and_recorded_in_env_json(tmp_path, offline, monkeypatch, caplog):
    write_idx_set(tmp_path / "data" / "mnist", [idx_bytes(a) for a in idx_arrays()])
    monkeypatch.setenv("CONVCOACH_DATA", str(tmp_path / "data"))
    with caplog.at_level(logging.INFO, logger="convcoach"):
        bundle = load_data("mnist", SourceOptions(), val_fraction=0.0)
    assert f"mnist: reading the copy in {tmp_path / 'data' / 'mnist'}" in caplog.messages
    assert bundle.source == str(tmp_path / "data" / "mnist")
    x, y = make_blobs(10)
    np.savez(tmp_path / "blobs.npz", x=x, y=y)
    Trainer(small_config(tmp_path / "blobs.npz", tmp_path / "run", epochs=1, report=False, monitors=False)).fit()
    assert json.loads((tmp_path / "run" / "env.json").read_text())["data_source"] == str(tmp_path / "blobs.npz")


# 15. a cutout larger than the images


def test_a_cutout_larger_than_the_images_is_an_error(tmp_path, blobs_npz):
    message = r"augmentation 'cutout:13': a 13x13 cutout is larger than the 12x12 images and would blank them; use at"
    with pytest.raises(ConfigError, match=message):
        Trainer(small_config(blobs_npz, tmp_path / "run", cutout=13))
