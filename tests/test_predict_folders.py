"""`convcoach predict` over folders and globs: batched rows that match predict_files and the model, CSV/JSON
written atomically, unreadable images skipped or (--strict) fatal, one-line errors for paths that match nothing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_blobs, small_config
from PIL import Image

from convcoach import Trainer
from convcoach.cli import main
from convcoach.evaluate.tta import tta_model
from convcoach.infer import expand_paths, load_trained, predict_files, predict_paths, write_predictions

HEADER = ["file", "prediction", "probability"] + [f"top{k}_{v}" for k in (1, 2, 3) for v in ("class", "probability")]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("predict")
    x, y = make_blobs()
    np.savez(root / "blobs.npz", x=x, y=y)
    Trainer(small_config(root / "blobs.npz", root / "run", epochs=3, report=False, monitors=False)).fit()
    return root / "run"


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, list[Path], np.ndarray, np.ndarray]:
    """12 fresh blob images as grayscale PNGs (which hold the arrays exactly) in nested folders, in sorted
    order, plus a text file and a hidden image that a folder argument must leave out."""
    root = tmp_path_factory.mktemp("photos") / "photos"
    x, y = make_blobs(n_per_class=4, seed=9)
    files = []
    for index, image in enumerate(x):
        path = root / ("a" if index < 6 else "b/nested") / f"img{index:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
        files.append(path)
    (root / "notes.txt").write_text("not an image")
    (root / ".cache").mkdir()
    Image.fromarray(x[0]).save(root / ".cache" / "thumb.png")
    return root, files, x, y


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_folder_is_predicted_in_batches_like_predict_files_and_the_model(run_dir, photos, tmp_path, capsys):
    root, files, x, y = photos
    out = tmp_path / "predictions.csv"
    assert main(["predict", "--checkpoint", str(run_dir), str(root), "--out", str(out), "--batch-size", "5"]) == 0
    assert capsys.readouterr().out.strip() == f"12 images predicted: {out}"
    rows = read_csv(out)
    assert list(rows[0]) == [*HEADER, "error"]
    assert [row["file"] for row in rows] == [str(f) for f in files]  # recursive, sorted, no .txt, no hidden
    assert [row["prediction"] for row in rows] == [str(int(label)) for label in y]  # the trained net is right
    trained = load_trained(run_dir)
    expected = predict_files(trained, files)
    assert [row["prediction"] for row in rows] == [e["prediction"] for e in expected]
    with torch.no_grad():
        probabilities = trained.model(trained.normalizer(torch.from_numpy(x)[:, None])).softmax(1)
    for row, reference, p in zip(rows, expected, probabilities):
        assert float(row["probability"]) == pytest.approx(p.max().item(), rel=1e-5)
        assert [row[f"top{k}_class"] for k in (1, 2, 3)] == [t["class"] for t in reference["top"]]
        assert [float(row[f"top{k}_probability"]) for k in (1, 2, 3)] == pytest.approx(
            [t["probability"] for t in reference["top"]], rel=1e-5
        )
        assert row["error"] == ""


def test_globs_are_expanded_recursively_with_duplicates_once(photos, tmp_path, monkeypatch):
    root, files, _, _ = photos
    monkeypatch.chdir(root.parent)
    assert expand_paths(["photos/**/*.png"]) == [f.relative_to(root.parent) for f in files]
    assert expand_paths(["photos/b/nested/img1*.png", "photos/a/img00.png", "photos/a/img00.png"]) == [
        Path(f"photos/b/nested/img{i}.png") for i in (10, 11)
    ] + [Path("photos/a/img00.png")]
    assert expand_paths(["photos/*"]) == [f.relative_to(root.parent) for f in files]  # folders matched: their images


def test_json_rows_with_tta_are_the_mean_softmax_over_the_views(run_dir, photos, tmp_path):
    root, files, x, _ = photos
    out = tmp_path / "p.json"
    argv = ["predict", "--checkpoint", str(run_dir), str(root / "a"), "--tta", "10crop", "--top-k", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["tta"] == "10crop" and written["top_k"] == 2 and written["counts"] == {"predicted": 6, "skipped": 0}
    trained = load_trained(run_dir)
    with torch.no_grad():
        views = tta_model(trained, "10crop")(trained.normalizer(torch.from_numpy(x[:6])[:, None])).softmax(1)
    for row, expected in zip(written["predictions"], views):
        top = expected.topk(2)
        assert [t["class"] for t in row["top"]] == [str(i) for i in top.indices.tolist()]
        assert [t["probability"] for t in row["top"]] == pytest.approx(top.values.tolist(), rel=1e-5)
        assert row["prediction"] == row["top"][0]["class"] and row["error"] is None


def test_images_are_decoded_one_batch_ahead_not_all_at_once(run_dir, photos, monkeypatch):
    import convcoach.predict as predict

    decoded = []
    real = predict.load_image
    monkeypatch.setattr(predict, "load_image", lambda *args: decoded.append(args[0]) or real(*args))
    rows = predict_paths(load_trained(run_dir), [photos[0]], batch_size=3, workers=1)
    assert decoded == []  # nothing is read until rows are asked for
    next(rows)
    assert 3 <= len(decoded) <= 6  # the first batch, and at most the next one, read while the first is predicted
    assert len(list(rows)) == 11 and len(decoded) == 12


def test_a_corrupt_image_is_skipped_with_its_error_or_with_strict_fails_leaving_no_file(
    run_dir, photos, tmp_path, capsys, caplog
):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name, source in (("a.png", photos[1][0]), ("c.png", photos[1][1])):
        (folder / name).write_bytes(source.read_bytes())
    (folder / "b.jpg").write_bytes(photos[1][2].read_bytes()[:40])  # a truncated file
    out = tmp_path / "out" / "p.csv"
    assert main(["predict", "--checkpoint", str(run_dir), str(folder), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"skipping unreadable image {folder / 'b.jpg'}" in caplog.text
    assert captured.out.strip() == f"2 images predicted: {out}, 1 unreadable images skipped (listed in it)"
    rows = read_csv(out)
    assert [row["file"] for row in rows] == [str(folder / n) for n in ("a.png", "b.jpg", "c.png")]
    assert (
        rows[1]["prediction"] == ""
        and rows[1]["probability"] == ""
        and rows[1]["error"].startswith("UnidentifiedImageError: ")
    )
    assert rows[0]["prediction"] and rows[2]["prediction"] and rows[0]["error"] == rows[2]["error"] == ""

    strict_out = tmp_path / "strict" / "p.csv"
    argv = ["predict", "--checkpoint", str(run_dir), str(folder), "--out", str(strict_out), "--strict"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"convcoach: error: {folder / 'b.jpg'}: unreadable image (")
    assert not (tmp_path / "strict").exists()  # neither the file nor the folder made for it


def test_an_interrupted_write_leaves_no_file_nor_temporary(tmp_path):
    def rows():
        yield {
            "file": "a.png",
            "prediction": "0",
            "probability": 1.0,
            "top": [{"class": "0", "probability": 1.0}],
            "error": None,
        }
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_predictions(rows(), tmp_path / "p.json")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("paths", "extra", "message"),
    [
        (["nothing/**/*.jpg"], [], "no files match 'nothing/**/*.jpg'"),
        (["missing.png"], [], "image not found: missing.png"),
        (["n*.txt"], [], "'n*.txt' matches 1 path but no image files"),
        (["empty"], [], "no images in folder empty (looked for .bmp, .gif"),
        (["a.png"], ["--format", "xml"], "unknown prediction format 'xml'; known: csv, json"),
        (["a.png"], ["--out", "p.txt"], "--out p.txt is a file: give a name ending in .csv or .json, or a directory"),
        (["a.png"], ["--tta", "5crop"], "unknown test-time augmentation '5crop'"),
    ],
)
def test_bad_paths_and_options_are_one_line_errors(
    run_dir, photos, tmp_path, monkeypatch, capsys, paths, extra, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "p.txt").write_text("x")
    (tmp_path / "a.png").write_bytes(photos[1][0].read_bytes())
    before = sorted(tmp_path.iterdir())
    assert main(["predict", "--checkpoint", str(run_dir), *paths, "--out", "p.csv", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"convcoach: error: {message}"), err
    assert sorted(tmp_path.iterdir()) == before  # nothing written


def test_the_throughput_figures_in_the_docs_are_the_measured_ones():
    root = Path(__file__).resolve().parents[1]
    measured = json.loads((root / "benchmarks" / "results" / "predict_throughput.json").read_text())
    assert measured["images"] == measured["csv_rows"] == 10_000 and measured["skipped"] == 0
    page = " ".join((root / "docs" / "guide" / "deploy.md").read_text().split())
    assert f"{measured['images_per_second']:.0f} images/s over 10,000 JPEGs" in page
    assert f"peak resident memory {measured['peak_rss_mb']:.0f} MB, the same as for 500 images" in page
    assert measured["small_run"]["images"] == 500
    assert abs(measured["small_run"]["peak_rss_mb"] - measured["peak_rss_mb"]) < 50  # memory follows the batch
