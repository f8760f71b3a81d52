"""The run report, eval outputs and compare page on a tiny image folder with hostile class names,
and the report opened in a real headless Chromium."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_blobs
from PIL import Image

from convcoach.cli import main

# a folder name cannot hold '/', so the closing tag uses U+2215 (a slash look-alike); the opening tag is the real attack
SCRIPT_CLASS = "<script>alert(1)<\u2215script>"
IMG_CLASS = "<img src=x onerror=alert(1)>"
CLASSES = [SCRIPT_CLASS, IMG_CLASS, "plain & simple"]
TINY = [
    "--model",
    "cnn",
    "--depth",
    "2",
    "--width",
    "8",
    "--epochs",
    "3",
    "--batch-size",
    "16",
    "--lr",
    "0.05",
    "--quiet",
    "--seed",
    "1",
]
SECTIONS = [
    "overview",
    "config",
    "data",
    "curves",
    "checks",
    "diagnosis",
    "monitors",
    "evaluation",
    "confusion-matrix",
    "calibration",
    "mistakes",
    "filters",
    "occlusion",
    "tuning",
]
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: thread hand-offs cost more than they save (~100x on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> Path:
    """An image folder whose class names are HTML, trained by `convcoach train` (which writes report.html)."""
    base = tmp_path_factory.mktemp("report")
    root = base / "images<em>"
    x, y = make_blobs(n_per_class=20, classes=3, size=12, seed=3)
    for index, (image, label) in enumerate(zip(x, y)):
        folder = root / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index}.png")
    run = base / "study" / "run"
    assert main(["train", "--data", str(root), *TINY, "--augment", "hflip,translate:1", "--out", str(run)]) == 0
    return run


def add_coach_and_tuning_files(run: Path) -> None:
    """What `check`, the monitors, the diagnosis and `tune` would leave (their formats: coach/check_report.py,
    tune/tune_report.py)."""
    (run / "check.json").write_text(
        json.dumps(
            {
                "command": "check",
                "status": "warn",
                "counts": {"pass": 1, "skip": 0, "warn": 1, "fail": 0},
                "seconds": 1.5,
                "results": [
                    {
                        "name": "initial_loss",
                        "status": "pass",
                        "message": "loss 1.10 vs ln(3) = 1.10",
                        "fix": "",
                        "details": {},
                        "seconds": 0.1,
                    },
                    {
                        "name": "lr_sweep",
                        "status": "warn",
                        "message": f"class {SCRIPT_CLASS} is rare",
                        "fix": "try lr 0.01-0.1",
                        "details": {},
                        "seconds": 1.4,
                    },
                ],
            }
        )
    )
    summary = json.loads((run / "summary.json").read_text())
    summary["diagnosis"] = {
        "verdict": "underfitting",
        "healthy": False,
        "causes": ["underfitting"],
        "facts": {"final_train_acc": 0.6},
        "findings": [
            {
                "cause": "underfitting",
                "severity": "warn",
                "title": "Underfitting",
                "evidence": "train accuracy 60%",
                "fixes": ["train longer", "more capacity"],
            }
        ],
    }
    (run / "summary.json").write_text(json.dumps(summary))
    with open(run / "metrics.jsonl", "a") as handle:
        for step in (1, 2, 3):
            handle.write(
                json.dumps(
                    {
                        "kind": "monitor",
                        "monitor": "activations",
                        "step": step,
                        "epoch": 0,
                        "layers": {"2": {"std": 1.0, "dead": 0.1 * step}, "5": {"std": 0.5, "dead": 0.0}},
                    }
                )
                + "\n"
            )
            handle.write(
                json.dumps(
                    {
                        "kind": "monitor",
                        "monitor": "gradients",
                        "step": step,
                        "epoch": 0,
                        "layers": {"0": {"grad_norm": 1.0 / step}},
                    }
                )
                + "\n"
            )
    study = run.parent
    with open(study / "trials.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["stage", "trial", "outcome", "val_acc", "lr", "run_dir", "message"])
        writer.writerows(
            [
                [1, 0, "completed", "0.52", "0.001", "x", ""],
                [1, 1, "completed", "0.81", "0.05", "y", ""],
                [1, 2, "diverged", "", "3.0", "z", "exploded"],
            ]
        )
    (study / "best.yaml").write_text("lr: 0.05\nmodel: cnn\n")


def test_train_writes_a_report_that_escapes_hostile_class_names(hostile_run):
    html = (hostile_run / "report.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;\u2215script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "plain &amp; simple" in html
    assert "<script" not in html.lower()  # no raw tag, and the page has no script of its own
    assert "<img src=x" not in html
    assert "images&lt;em&gt;" in html and "images<em>" not in html  # config values (the data path) too


def test_the_header_and_the_evaluation_say_which_accuracy_has_test_time_augmentation(hostile_run):
    summary = json.loads((hostile_run / "summary.json").read_text())
    html = (hostile_run / "report.html").read_text()
    with_tta, without = summary["test_accuracy"] * 100, summary["test_accuracy_without_tta"] * 100
    assert f"test accuracy {with_tta:.2f}% with flip TTA ({without:.2f}% without)" in html
    assert "Without test-time augmentation; the header&#x27;s accuracy uses flip TTA." in html


def test_report_rebuild_has_every_section_and_loads_nothing_from_outside(hostile_run, capsys):
    add_coach_and_tuning_files(hostile_run)
    assert main(["report", str(hostile_run)]) == 0
    assert f"report: {hostile_run / 'report.html'}" in capsys.readouterr().out
    html = (hostile_run / "report.html").read_text()
    anchors = re.findall(r'<section id="([a-z0-9-]+)">', html)
    for section in SECTIONS:
        assert section in anchors, section
    assert len(anchors) == len(set(anchors))
    for alt in (
        "training loss per iteration",
        "loss per epoch",
        "accuracy per epoch",
        "learning rate",
        "training samples",
        "augmented samples",
        "confusion matrix",
        "reliability diagram",
        "most confidently wrong images",
        "activations dead",
        "activations std",
        "gradients grad_norm",
    ):
        assert f'alt="{alt}"' in html, alt
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"<link|<script|@import|url\(|https?://", html)
    assert "Content-Security-Policy" in html
    assert (
        'class="warn"><td>lr_sweep' in html and "class &lt;script&gt;alert(1)" in html
    )  # check rows coloured, messages escaped
    assert (
        'class="warn"><td>warn</td><td>Underfitting</td><td>train accuracy 60%</td><td>train longer; more capacity</td>'
        in html
    )
    assert "lr: 0.05" in html  # the study's best.yaml


def test_report_of_a_missing_directory_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip() == f"convcoach: error: run directory not found: {tmp_path / 'nope'}"


def test_eval_writes_confusion_calibration_and_mistakes(hostile_run, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", "--checkpoint", str(hostile_run), "--top-k", "2", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    test_count = json.loads((hostile_run / "summary.json").read_text())["data"]["test"]
    matrix = summary["confusion_matrix"]["rows_true_columns_predicted"]
    assert summary["confusion_matrix"]["classes"] == sorted(CLASSES)
    assert sum(map(sum, matrix)) == test_count
    assert sum(matrix[i][i] for i in range(3)) / test_count == pytest.approx(summary["accuracy"])
    assert (
        set(summary["top_k_accuracy"]) == {"1", "2"}
        and summary["top_k_accuracy"]["2"] >= summary["top_k_accuracy"]["1"]
    )
    bins = summary["reliability"]
    assert sum(bins["counts"]) == test_count and len(bins["counts"]) == 10
    assert bins["edges"] == pytest.approx([b / 10 for b in range(11)])
    # ECE = sum_b n_b / N |acc_b - conf_b| over the summary's own bins; the bins' accuracies average to the accuracy
    ece = sum(
        n / test_count * abs(acc - conf) for n, acc, conf in zip(bins["counts"], bins["accuracy"], bins["confidence"])
    )
    assert summary["expected_calibration_error"] == pytest.approx(ece, abs=1e-12) and ece > 0
    assert sum(n * acc for n, acc in zip(bins["counts"], bins["accuracy"])) / test_count == pytest.approx(
        summary["accuracy"]
    )
    for n, conf, low, high in zip(bins["counts"], bins["confidence"], bins["edges"], bins["edges"][1:]):
        assert (low < conf <= high + 1e-12) if n else conf == 0.0
    assert set(summary["per_class"][IMG_CLASS]) == {"precision", "recall", "accuracy", "f1", "support"}
    for name in ("confusion.png", "reliability.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")
    assert (out / "mistakes.png").exists() == bool(summary["confident_mistakes"])
    assert "&lt;img src=x onerror=alert(1)&gt;" in (out / "report.html").read_text()
    assert "expected calibration error" in capsys.readouterr().out


def test_compare_overlays_runs_and_lists_the_settings_that_differ(hostile_run, tmp_path, capsys):
    blobs = tmp_path / "blobs.npz"
    x, y = make_blobs(n_per_class=20)
    np.savez(blobs, x=x, y=y)
    other = tmp_path / "other"
    assert main(["train", "--data", f"npz:{blobs}", *TINY, "--lr", "0.01", "--no-report", "--out", str(other)]) == 0
    assert not (other / "report.html").exists()
    out = tmp_path / "compare.html"
    assert main(["compare", str(hostile_run), str(other), "--out", str(out)]) == 0
    html = out.read_text()
    assert html.count("<tr><td>run</td>") == 1 and html.count("<tr><td>other</td>") == 1
    assert "<tr><td>lr</td>" in html and "<tr><td>augment</td>" in html and "<tr><td>epochs</td>" not in html
    for alt in ("training loss per iteration", "val_acc per epoch", "train_loss per epoch", "lr per epoch"):
        assert f'alt="{alt}"' in html
    capsys.readouterr()
    assert main(["compare", str(hostile_run), str(tmp_path), "--out", str(out)]) == 2
    assert "not a convcoach run directory" in capsys.readouterr().err


CHECK_SCRIPT = """<script>
window.ccErrors = [];
window.addEventListener('error', e => window.ccErrors.push('error ' + (e.message || \
(e.target && (e.target.src || e.target.tagName)))), true);
document.addEventListener('securitypolicyviolation', e => window.ccErrors.push('csp ' + e.violatedDirective + \
' ' + e.blockedURI));
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const mark = document.createElement('div');
  mark.id = 'cc-check';
  mark.setAttribute('data-images', images.length);
  mark.setAttribute('data-broken', images.filter(i => !i.complete || i.naturalWidth === 0).length);
  mark.setAttribute('data-errors', window.ccErrors.join(' | '));
  document.body.appendChild(mark);
});
</script>"""


def chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={user_data}",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium)")
def test_report_opens_in_headless_chromium_without_errors_and_every_image_loads(hostile_run, tmp_path):
    report = hostile_run / "report.html"
    html = report.read_text()
    # the checker goes before the page's Content-Security-Policy (which forbids scripts),
    # so it runs and sees every violation
    checked = tmp_path / "checked.html"
    checked.write_text(html.replace("<head>", "<head>" + CHECK_SCRIPT, 1))
    result = chromium(
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        "--dump-dom",
        checked.as_uri(),
        user_data=tmp_path / "profile1",
    )
    mark = re.search(r'<div id="cc-check" data-images="(\d+)" data-broken="(\d+)" data-errors="([^"]*)"', result.stdout)
    assert mark, result.stderr[-2000:]
    assert int(mark.group(1)) == html.count("<img ") >= 15
    assert mark.group(2) == "0" and mark.group(3) == ""
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    screenshot = tmp_path / "report.png"
    shot = chromium(
        "--hide-scrollbars",
        "--window-size=1280,2400",
        f"--screenshot={screenshot}",
        report.as_uri(),
        user_data=tmp_path / "profile2",
    )
    assert screenshot.is_file(), shot.stderr[-2000:]
    with Image.open(screenshot) as image:
        assert image.size == (1280, 2400)
        pixels = np.asarray(image.convert("L"), dtype=np.float32)
    assert pixels[:80].mean() < 100  # the dark header rendered
    assert pixels.std() > 20  # tables and figures, not a blank page
    print(f"screenshot: {screenshot}")
