"""The command line: train/eval/predict round trip, and one-line errors with exit code 2 for bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_blobs
from PIL import Image

from convcoach.cli import main

# tiny runs of a few dozen steps: Nesterov, whose lr the tests set (Muon's default step suits thousands)
TINY = [
    "--model",
    "cnn",
    "--depth",
    "2",
    "--width",
    "8",
    "--epochs",
    "2",
    "--batch-size",
    "32",
    "--quiet",
    "--augment",
    "none",
    "--optimizer",
    "nesterov",
]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def trained(blobs_npz, tmp_path, capsys) -> Path:
    code, out, _ = run(
        capsys,
        "train",
        "--data",
        f"npz:{blobs_npz}",
        *TINY,
        "--epochs",
        "6",
        "--lr",
        "0.05",
        "--out",
        str(tmp_path / "run"),
    )
    assert code == 0 and "test accuracy:" in out
    return tmp_path / "run"


def test_train_eval_predict_round_trip(trained, blobs_npz, tmp_path, capsys):
    summary = json.loads((trained / "summary.json").read_text())
    code, out, _ = run(capsys, "eval", "--checkpoint", str(trained / "best.pt"), "--out", str(tmp_path / "eval"))
    assert code == 0
    evaluated = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert evaluated["accuracy"] == pytest.approx(summary["test_accuracy"])
    assert set(evaluated["per_class_accuracy"]) == {"0", "1", "2"}

    x, y = make_blobs(n_per_class=1, seed=9)
    files = []
    for index, image in enumerate(x):
        path = tmp_path / f"img{index}.png"
        Image.fromarray(image).save(path)
        files.append(str(path))
    code, out, _ = run(capsys, "predict", "--checkpoint", str(trained), *files, "--out", str(tmp_path / "pred"))
    assert code == 0
    predictions = json.loads((tmp_path / "pred" / "summary.json").read_text())["predictions"]
    assert [p["prediction"] for p in predictions] == [str(int(label)) for label in y]
    assert sum(t["probability"] for t in predictions[0]["top"]) <= 1.0 + 1e-6
    # the probabilities are the checkpoint's softmax on the images (the grayscale PNGs hold the arrays exactly)
    from convcoach.infer import load_trained

    loaded = load_trained(trained)
    with torch.no_grad():
        expected = loaded.model(loaded.normalizer(torch.from_numpy(x)[:, None])).softmax(1)
    for row, probabilities in zip(predictions, expected):
        order = probabilities.argsort(descending=True).tolist()
        assert [t["class"] for t in row["top"]] == [str(c) for c in order]
        assert [t["probability"] for t in row["top"]] == pytest.approx(probabilities[order].tolist(), rel=1e-5)


def test_yaml_config_with_flag_override(blobs_npz, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(
        f"data: npz:{blobs_npz}\nmodel: cnn\ndepth: 2\nwidth: 8\nepochs: 3\nquiet: true\naugment: [none]\n"
    )
    code, _, _ = run(capsys, "train", "--config", str(config), "--epochs", "1", "--out", str(tmp_path / "run"))
    assert code == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["epochs_run"] == 1


def error_of(capsys, *argv: str) -> str:
    code, _, err = run(capsys, *argv)
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("convcoach: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        (
            "--model",
            "resnett",
            "unknown model 'resnett' (did you mean 'resnet'?); known: alexnet, cnn, linear, mlp, mobilenet_v3_large, "
            "resnet, resnet18, resnet34, resnet50, truncated, vgg, vgg11_bn, vgg16_bn",
        ),
        ("--optimizer", "adamm", "unknown optimizer 'adamm' (did you mean 'adam'?)"),
        ("--schedule", "cosin", "unknown schedule 'cosin' (did you mean 'cosine'?)"),
        ("--data", "fashion-mnis", "unknown dataset 'fashion-mnis' (did you mean 'fashion-mnist'?)"),
        ("--init", "kaimin", "unknown init 'kaimin'"),
        ("--batch-size", "abc", "batch_size: 'abc' is not a valid int"),
    ],
)
def test_unknown_names_list_valid_ones(capsys, tmp_path, flag, value, expected):
    assert expected in error_of(capsys, "train", flag, value, "--out", str(tmp_path / "r"))


def test_config_typo_names_key_and_suggests(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("epoch: 3\n")
    message = error_of(capsys, "train", "--config", str(config))
    assert "unknown key 'epoch'" in message and "did you mean 'epochs'?" in message and str(config) in message


def test_missing_data_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CONVCOACH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CONVCOACH_MIRROR", "http://127.0.0.1:9")  # nothing listens on the discard port
    message = error_of(
        capsys, "train", "--data", "mnist", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")
    )
    assert "dataset 'mnist' not found" in message and "--data-dir" in message


def test_truncated_idx_file_is_named(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    header = (2051).to_bytes(4, "big") + (10).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    for stem in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        (folder / f"{stem}.gz").write_bytes(gzip.compress(header + bytes(100)))  # promises 7840 bytes
    for stem in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (folder / f"{stem}.gz").write_bytes(
            gzip.compress((2049).to_bytes(4, "big") + (10).to_bytes(4, "big") + bytes(10))
        )
    message = error_of(
        capsys, "train", "--data", "fashion-mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")
    )
    assert "train-images-idx3-ubyte.gz" in message and "truncated" in message


def test_corrupt_npz_and_out_of_range_labels(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    assert str(bad) in error_of(capsys, "train", "--data", f"npz:{bad}", "--out", str(tmp_path / "r"))
    labels = tmp_path / "labels.npz"
    np.savez(labels, x=np.zeros((10, 8, 8), np.uint8), y=np.arange(10) - 1)
    assert "negative label -1" in error_of(capsys, "train", "--data", f"npz:{labels}", "--out", str(tmp_path / "r"))


def test_empty_class_folder_is_named(tmp_path, capsys):
    (tmp_path / "imgs" / "cat").mkdir(parents=True)
    (tmp_path / "imgs" / "dog").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "imgs" / "dog" / "a.png")
    message = error_of(capsys, "train", "--data", str(tmp_path / "imgs"), "--out", str(tmp_path / "r"))
    assert "cat" in message and "no images" in message


def test_checkpoint_of_another_class_count_or_architecture(trained, tmp_path, capsys):
    x, y = make_blobs(classes=4, n_per_class=10)
    four = tmp_path / "four.npz"
    np.savez(four, x=x, y=y)
    assert "trained for 3 classes" in error_of(
        capsys, "eval", "--checkpoint", str(trained / "best.pt"), "--data", f"npz:{four}"
    )
    payload = torch.load(trained / "best.pt", weights_only=True)
    payload["model"]["options"]["width"] = 16
    torch.save(payload, tmp_path / "other.pt")
    assert "does not match this architecture" in error_of(capsys, "eval", "--checkpoint", str(tmp_path / "other.pt"))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert "not a readable checkpoint" in error_of(capsys, "eval", "--checkpoint", str(tmp_path / "junk.pt"))


def test_predict_image_of_another_mode_and_size_is_converted(trained, tmp_path, capsys):
    Image.new("RGBA", (40, 30), (255, 0, 0, 128)).save(tmp_path / "big.png")
    code, out, _ = run(
        capsys, "predict", "--checkpoint", str(trained), str(tmp_path / "big.png"), "--out", str(tmp_path / "p")
    )
    assert code == 0 and "big.png" in out
    # red at alpha 128 over white is (255, 127, 127); as L (ITU-R 601: 0.299 R + 0.587 G + 0.114 B) 165.27 -> 165,
    # the same at every pixel, so resizing 40x30 to the model's 12x12 keeps 165
    from convcoach.infer import load_trained

    loaded = load_trained(trained)
    with torch.no_grad():
        expected = loaded.model(loaded.normalizer(torch.full((1, 1, 12, 12), 165, dtype=torch.uint8))).softmax(1)[0]
    (row,) = json.loads((tmp_path / "p" / "summary.json").read_text())["predictions"]
    assert row["prediction"] == str(int(expected.argmax()))
    assert row["top"][0]["probability"] == pytest.approx(expected.max().item(), rel=1e-5)
    assert [t["probability"] for t in row["top"]] == pytest.approx(
        expected.sort(descending=True).values.tolist(), rel=1e-5
    )
    assert "image not found" in error_of(capsys, "predict", "--checkpoint", str(trained), str(tmp_path / "missing.png"))


def test_python_module_entry_point_runs():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "convcoach", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith(
        "usage: convcoach [-h] [--verbose] [--version] COMMAND ..."
    )
    listed = [
        line.split()[0]
        for line in result.stdout.splitlines()
        if line.startswith("    ") and not line.startswith("     ")
    ]
    assert listed == [
        "train",
        "eval",
        "export",
        "augment",
        "predict",
        "tune",
        "finetune",
        "features",
        "knn",
        "inspect",
        "report",
        "compare",
        "check",
        "lr-find",
        "stats",
        "diagnose",
        "completion",
    ]


def test_train_prints_the_tta_and_plain_accuracy_and_records_the_lr_used(blobs_npz, tmp_path, capsys):
    code, out, _ = run(
        capsys,
        "train",
        "--data",
        f"npz:{blobs_npz}",
        *TINY,
        "--augment",
        "hflip",
        "--optimizer",
        "adam",
        "--out",
        str(tmp_path / "run"),
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert code == 0 and summary["tta"] == "flip" and summary["lr"] == 1e-3  # adam's default
    line = next(line for line in out.splitlines() if line.startswith("test accuracy:"))
    assert line.startswith(
        f"test accuracy: {summary['test_accuracy'] * 100:.2f}% with flip TTA "
        f"({summary['test_accuracy_without_tta'] * 100:.2f}% without)"
    )


def test_train_help_shows_each_flags_meaning_and_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "--val-fraction VAL_FRACTION share of the training split held out, stratified, for validation (default: 0.05)"
        in text
    )
    assert "--lr LR peak learning rate, or auto: a few-second LR range test before training picks it" in text
    assert (
        "--epochs EPOCHS passes over the training split (none: the default recipe's rule, as many of 30 as fit in "
        "--time-budget, 4.75 minutes unless given)" in text
    )
    assert "--augment AUGMENT comma-separated ops" in text and "(default: hflip)" in text


def test_reg_all_flag_also_penalizes_biases_and_norm_parameters(blobs_npz, tmp_path):
    from convcoach.cli import build_parser, config_from_args
    from convcoach.train.loop import Trainer

    def penalty(*extra: str) -> tuple[float, float, float]:
        out = str(tmp_path / f"r{len(extra)}")  # one run directory per run
        argv = ["train", "--data", f"npz:{blobs_npz}", *TINY, "--reg", "l2:0.01", *extra, "--out", out]
        trainer = Trainer(config_from_args(build_parser().parse_args(argv)))
        model = trainer.model
        weights = sum(
            m.weight.pow(2).sum().item() for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
        )
        everything = sum(p.pow(2).sum().item() for p in model.parameters())
        return trainer.penalty(trainer.penalty_params).item(), weights, everything

    value, weights, everything = penalty()
    assert value == pytest.approx(0.01 * weights, rel=1e-5)
    value, weights, everything = penalty("--reg-all")
    assert value == pytest.approx(0.01 * everything, rel=1e-5)
    assert everything > weights + 1.0  # BatchNorm's weights start at 1: a difference the test can see


def test_base_batch_size_scales_the_learning_rate(blobs_npz, tmp_path, capsys):
    code, _, _ = run(
        capsys,
        "train",
        "--data",
        f"npz:{blobs_npz}",
        *TINY,
        "--epochs",
        "1",
        "--schedule",
        "constant",
        "--lr",
        "0.05",
        "--batch-size",
        "64",
        "--base-batch-size",
        "32",
        "--no-report",
        "--out",
        str(tmp_path / "run"),
    )
    assert code == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["lr"] == pytest.approx(0.1)  # 0.05 x 64 / 32
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [row["lr"] for row in rows if row["kind"] == "iter"]
    assert len(steps) == 2 and steps == [pytest.approx(0.1)] * 2  # 130 training images: 2 full batches of 64


def test_verbose_turns_on_debug_logging(blobs_npz, tmp_path, capsys, caplog):
    import logging

    logger = logging.getLogger("convcoach")
    level = logger.level
    try:
        with caplog.at_level(logging.DEBUG):
            assert (
                main(["eval", "--checkpoint", str(tmp_path / "missing")]) == 2
            )  # the levels are set before the command runs
            assert logger.level == logging.INFO
            flags = [
                "train",
                "--data",
                f"npz:{blobs_npz}",
                *TINY,
                "--epochs",
                "1",
                "--lr",
                "0.05",
                "--init",
                "lsuv",
                "--no-report",
            ]
            assert main(["--verbose", *flags, "--out", str(tmp_path / "verbose")]) == 0
            assert logger.level == logging.DEBUG
        # LSUV rescales every conv and linear layer of the cnn (depth 2: 4 convs, 2 linear) and says so at debug level
        assert [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG and r.name == "convcoach"] == [
            "LSUV rescaled 6 layers"
        ]
    finally:
        logger.setLevel(level)


def test_version_flag_prints_the_package_version(capsys):
    import convcoach
    from convcoach.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"convcoach {convcoach.__version__}"
