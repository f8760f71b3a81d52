"""Bad input found by an audit of every command: each is a one-line ConfigError (or argparse usage
error) naming the key, file or value, never a traceback from inside numpy or torch."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import small_config

from convcoach import TrainConfig, Trainer
from convcoach.cli import main
from convcoach.config import from_dict
from convcoach.data.sources import SourceOptions, load_data
from convcoach.errors import ConfigError
from convcoach.models import create_model
from convcoach.train.checkpoint import save_checkpoint


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"seed": -1}, r"seed must be in 0\.\.4294967295, got -1"),
        ({"momentum": 0.0}, r"optimizer muon needs momentum > 0 \(got 0\); use --optimizer sgd"),
        (
            {"optimizer": "nesterov", "momentum": 0.0},
            r"optimizer nesterov needs momentum > 0 \(got 0\); use --optimizer sgd",
        ),
        ({"explosion_factor": 0.5}, r"explosion_factor must be > 1"),
        ({"nproc": 0}, r"nproc must be >= 1, got 0"),
        ({"memory_limit_gb": -1.0}, r"memory_limit_gb must be > 0, got -1\.0"),
        ({"lr": float("inf")}, r"lr: 'inf' is not a finite number"),
        ({"mixup": float("nan")}, r"mixup: 'nan' is not a finite number"),
        (
            {"tta": "random:2", "augment": ["none"]},
            r"tta 'random:2' draws the training augmentation, and augment is none",
        ),
        ({"reg": "l2:nan"}, r"reg 'l2:nan': 'nan' is not a finite number"),
        ({"schedule": "step:nan"}, r"schedule 'step:nan': 'nan' is not a finite number"),
        ({"schedule": "exp:1e200"}, r"the decay factor must be in \(0, 1\], got 1e\+200"),
        ({"schedule": "step:1:-1"}, r"the decay factor must be in \(0, 1\], got -1"),
        ({"schedule": "cosine:5"}, r"schedule 'cosine:5': 'cosine' takes no arguments, got 1 \(5 would be ignored\)"),
        ({"schedule": "step:3,6:0.5:2"}, r"'step' takes at most 2 arguments, got 3 \(2 would be ignored\)"),
        (
            {"augment": ["hflip:0.5:3"]},
            r"augmentation 'hflip:0\.5:3': 'hflip' takes at most 1 argument, got 2 \(3 would be ignored\)",
        ),
        ({"augment": ["translate:2.7"]}, r"augmentation 'translate:2\.7': the padding 2\.7 must be a whole number"),
        ({"augment": ["elastic:2:3.5"]}, r"the grid size 3\.5 must be a whole number"),
        ({"cutout": 8, "augment": ["cutout:4:1"]}, r"'cutout' takes at most 1 argument, got 2"),
        (
            {"tta": "10crop:2:3"},
            r"test-time augmentation '10crop:2:3': '10crop' takes at most 1 argument, got 2 \(3 would be ignored\)",
        ),
        ({"tta": "flip:2"}, r"'flip' takes no arguments, got 1"),
        ({"norm": "group:4:2"}, r"norm 'group:4:2': 'group' takes at most 1 argument, got 2"),
        ({"norm": "batch:0.1"}, r"norm 'batch:0\.1': 'batch' takes no arguments"),
        ({"init": "kaiming:2"}, r"init 'kaiming:2': 'kaiming' takes no arguments, got 1 \(2 would be ignored\)"),
        ({"reg": "l2:1e-4:5"}, r"reg 'l2:1e-4:5': 'l2' takes at most 1 argument, got 2 \(5 would be ignored\)"),
    ],
)
def test_config_values_that_would_crash_or_corrupt_training_are_rejected(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**values).validate()


def test_cli_floats_must_be_finite_and_model_options_plain_values():
    with pytest.raises(ConfigError, match=r"weight_decay: 'nan' is not a finite number"):
        from_dict({"weight_decay": "nan"})
    with pytest.raises(
        ConfigError, match=r"model_options: the value of 'width' \('\[1'\) is not a plain value; give name=value pairs"
    ):
        from_dict({"model_options": "width=[1,2]"})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"depth": 5},
            r"model 'cnn' with depth=5 cannot be built for 1x8x8 images and 3 classes: .*too small .*a smaller --depth",
        ),
        ({"width": 0}, r"model 'cnn' with width=0 cannot be built .*check these option values"),
        ({"pool": "fractional:3"}, r"output_ratio must be between 0 and 1 .*check these option values"),
        ({"norm_spec": "group:abc"}, r"invalid literal for int\(\)"),
    ],
)
def test_impossible_model_options_fail_at_build_time_naming_them(options, message):
    with pytest.raises(ConfigError, match=message):
        create_model("cnn", (1, 8, 8), 3, **options)


def test_the_dry_run_leaves_the_random_stream_alone(monkeypatch):
    import torch

    import convcoach.models as models

    def stream_after_build() -> torch.Tensor:
        torch.manual_seed(0)
        create_model("cnn", (1, 8, 8), 3, depth=1, pool="fractional")  # fractional pooling draws random numbers
        return torch.rand(3)

    with_dry_run = stream_after_build()
    monkeypatch.setattr(models, "_dry_run", lambda model, shape: None)
    assert torch.equal(with_dry_run, stream_after_build())


def _npz(tmp_path: Path, name: str, **arrays) -> str:
    path = tmp_path / f"{name}.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


def _load(spec: str):
    return load_data(spec, SourceOptions(), 0.0)


def test_npz_integer_images_wider_than_uint8_keep_their_pixel_values(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (30, 6, 6)), np.repeat(np.arange(3), 10)
    wide, narrow = (
        _load(_npz(tmp_path, "wide", x=x.astype(np.int64), y=y)),
        _load(_npz(tmp_path, "narrow", x=x.astype(np.uint8), y=y)),
    )
    assert np.array_equal(wide.train.images.numpy(), narrow.train.images.numpy())  # was x * 255: pixel 1 became 255
    with pytest.raises(ConfigError, match=r"integer images in 'x' must lie in 0\.\.255 \(found 300\.\.300\)"):
        _load(_npz(tmp_path, "over", x=np.full((30, 6, 6), 300), y=y))


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((0, 6, 6), np.uint8), "y": np.zeros(0, np.int64)}, r"'x' and 'y' are empty"),
        (
            {"x": np.zeros((30, 6, 6), np.uint8), "y": np.repeat([0, 1, 10**9], 10)},
            r"labels run to 1000000000 but only 3 distinct values occur \(0, 1, 1000000000\); .* remap them",
        ),
        (
            {"x": np.full((30, 6, 6), np.nan), "y": np.repeat(np.arange(3), 10)},
            r"'x' holds NaN or infinite pixel values",
        ),
        (
            {
                "x": np.zeros((30, 6, 6), np.uint8),
                "y": np.repeat(np.arange(3), 10),
                "x_test": np.zeros((6, 3, 6, 6), np.uint8),
                "y_test": np.zeros(6, np.int64),
            },
            r"'x_test' images are \(3, 6, 6\) \(C, H, W\) but 'x' images are \(1, 6, 6\)",
        ),
        (
            {
                "x": np.zeros((30, 6, 6), np.uint8),
                "y": np.repeat(np.arange(3), 10),
                "x_test": np.zeros((6, 6, 6), np.uint8),
            },
            r"has 'x_test' without 'y_test'; give both or neither",
        ),
    ],
)
def test_npz_files_that_cannot_be_a_dataset_are_named_errors(tmp_path, arrays, message):
    with pytest.raises(ConfigError, match=message):
        _load(_npz(tmp_path, "bad", **arrays))


def test_npz_labels_that_skip_a_few_indices_warn_about_the_empty_classes(tmp_path, caplog):
    y = np.repeat([0, 1, 4], 10)
    with caplog.at_level(logging.WARNING, logger="convcoach"):
        bundle = _load(_npz(tmp_path, "gap", x=np.zeros((30, 6, 6), np.uint8), y=y))
    assert bundle.num_classes == 5 and "classes 2, 3 have no images in 'y'" in caplog.text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "--checkpoint", "x.pt", "--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
        (["predict", "--checkpoint", "x.pt", "a.png", "--top-k", "-1"], "argument --top-k: must be >= 1, got -1"),
        (["knn", "--batch-size", "x"], "argument --batch-size: 'x' is not an integer"),
    ],
)
def test_command_integer_flags_are_checked_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_check_threads_is_the_config_field_checked_before_any_work(capsys):
    assert main(["check", "--threads", "0"]) == 2
    assert capsys.readouterr().err == "convcoach: error: threads must be >= 1, got 0\n"


def test_writing_a_file_over_a_directory_and_a_grid_with_no_image_suffix_are_errors(tmp_path, capsys):
    with pytest.raises(ConfigError, match="is a directory; give a file path"):
        save_checkpoint({}, tmp_path)
    assert main(["augment", "--data", "digits", "--augment", "hflip", "--out", str(tmp_path / "grid.txt")]) == 2
    assert "give an image file name ending in .png" in capsys.readouterr().err


def test_damaged_run_files_are_named_errors_or_skipped_lines(blobs_npz, tmp_path, capsys):
    run = tmp_path / "run"
    Trainer(small_config(blobs_npz, run, epochs=2, report=False)).fit()
    (run / "summary.json").write_text("[1, 2]")
    assert main(["diagnose", str(run)]) == 2
    assert "summary.json: expected a JSON object, got list" in capsys.readouterr().err
    assert main(["report", str(run)]) == 2
    (run / "summary.json").write_text("{}")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines[:-1] + ["[1]"]) + "\n")
    assert main(["diagnose", str(run)]) == 2
    assert f"metrics.jsonl:{len(lines)}: not a metrics row (a JSON object)" in capsys.readouterr().err
    # a line cut short by a kill does not stop a resume: the resume rewrites the log from last.pt
    (run / "metrics.jsonl").write_text("\n".join(lines) + '\n{"kind": "iter", "st')
    summary = Trainer(TrainConfig(resume=str(run), epochs=3, quiet=True)).fit()
    assert (
        summary["epochs_run"] == 3 and summary["steps"] == 12
    )  # 130 training images, batches of 32: 4 full steps per epoch
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == [1, 2, 3]  # the cut line is gone, no epoch is doubled
    assert [r["step"] for r in rows if r["kind"] == "iter"] == list(range(1, 13))
    # the start's five monitor rows (activations, gradients, updates, step_size, noise), one per step and epoch
    assert len(rows) == 5 + 12 + 3


def test_tune_space_given_twice_is_an_error(tmp_path):
    from argparse import Namespace

    from convcoach.tune.options import tune_inputs
    from convcoach.tune.space import parse_space

    with pytest.raises(ConfigError, match=r"'lr' is given twice"):
        parse_space("lr=0.01..0.1, lr=0.1..1")
    space_file = tmp_path / "space.yaml"
    space_file.write_text("space:\n  lr: 0.01..0.1:log\n")
    args = Namespace(config=None, space="lr=0.01..0.1", space_file=str(space_file))
    with pytest.raises(ConfigError, match="give the search space once: --space and --space-file are both set"):
        tune_inputs(args)


def test_a_model_option_that_overrides_a_generic_flag_says_so(caplog):
    from convcoach.models.spec import model_spec

    config = TrainConfig(model="cnn", depth=1, model_options={"depth": 2})
    with caplog.at_level(logging.WARNING, logger="convcoach"):
        spec = model_spec(config, (1, 8, 8), 3)
    assert spec["options"]["depth"] == 2 and "model_options depth=2 overrides depth 1" in caplog.text


def test_randaugment_on_images_smaller_than_its_kernels_runs(tmp_path, capsys):
    import torch

    from convcoach.data.augment import parse_augment
    from convcoach.data.preprocess import Normalizer

    images = torch.randint(0, 256, (16, 1, 2, 2), dtype=torch.uint8)
    normalizer = Normalizer.fit(images, "none")
    augmenter = parse_augment(["randaugment:14:30"]).fit(images, normalizer)
    x = normalizer(images)
    out = augmenter(x, torch.Generator().manual_seed(0))  # 14 ops per image: sharpness among them
    assert out.shape == (16, 1, 2, 2) and torch.isfinite(out).all()
    assert normalizer.mean == [0.0] and normalizer.std == [1.0]  # 'none': the pixels in [0, 1]
    assert out.min().item() >= 0.0 and out.max().item() <= 1.0
    changed = sum(not torch.allclose(o, i, atol=1e-4) for o, i in zip(out, x))
    assert changed >= 12, f"only {changed} of 16 images changed under 14 ops at magnitude 30"
    assert main(["features", "--checkpoint", "x.pt", "--data", "digits", "--out", str(tmp_path / "f")]) == 2
    assert "give a file name ending in .npz" in capsys.readouterr().err


def test_a_group_count_that_does_not_divide_the_channels_says_what_it_used(caplog):
    from convcoach.models.layers import norm as make_norm

    with caplog.at_level(logging.WARNING, logger="convcoach"):
        norm = make_norm("group:5", 12)
    assert norm.num_groups == 4 and "norm group:5 on 12 channels: 5 does not divide them, using 4 groups" in caplog.text


def test_nesterov_with_the_ema_momentum_convention_is_an_error():
    with pytest.raises(ConfigError, match=r"optimizer nesterov supports only momentum_convention sum"):
        TrainConfig(optimizer="nesterov", momentum_convention="ema").validate()
    TrainConfig(optimizer="momentum", momentum_convention="ema").validate()


def test_extra_spec_arguments_of_pooling_strategies_and_pruners_are_errors_not_ignored():
    import torch

    from convcoach.transfer.strategy import check_strategy, trainable_stages
    from convcoach.tune.backends import create_pruner

    with pytest.raises(ConfigError, match=r"pooling 'max:2': 'max' takes no arguments, got 1 \(2 would be ignored\)"):
        create_model("vgg", (1, 28, 28), 10, pool="max:2")
    model = create_model("vgg", (1, 28, 28), 10, pool="fractional:0.6")  # the argument is read, not the default 0.7
    ratios = [m.output_ratio for m in model.modules() if isinstance(m, torch.nn.FractionalMaxPool2d)]
    assert ratios == [(0.6, 0.6)] * 3
    with pytest.raises(ConfigError, match=r"strategy 'stages:3': 'stages' takes no arguments"):
        check_strategy("stages:3")
    check_strategy("top:2")
    assert trainable_stages("top:2", ["stem", "stage1", "stage2", "fc1"]) == ["stage2", "fc1"]
    with pytest.raises(ConfigError, match=r"strategy 'top:2:1': 'top' takes at most 1 argument, got 2"):
        check_strategy("top:2:1")
    with pytest.raises(ConfigError, match=r"prune 'none:1': 'none' takes no arguments"):
        create_pruner("none:1")
    median = create_pruner("median:3:2")
    assert (median._n_startup_trials, median._n_warmup_steps) == (3, 3)  # warmup 2 epochs: steps are 1-based epochs


def test_options_the_optimizer_or_loss_never_reads_are_warned_about(caplog, tmp_path):
    from convcoach.train.setup import warn_unused

    with caplog.at_level(logging.WARNING, logger="convcoach"):
        warn_unused(TrainConfig(optimizer="adagrad", momentum=0.5, momentum_convention="ema"))
        warn_unused(TrainConfig(loss="svm", label_smoothing=0.2))
        warn_unused(TrainConfig(loss="svm", optimizer="adam", momentum=0.8))  # defaults and beta1: silent
    assert caplog.messages == [
        "ignoring momentum 0.5: optimizer adagrad has no momentum (only momentum, nesterov, adam, adamw, muon)",
        "ignoring momentum_convention ema: only optimizer momentum reads it",
        "ignoring label_smoothing 0.2: the svm loss scores hard labels",
    ]


def test_adam_reads_momentum_as_beta1():
    import torch

    from convcoach.train.optim import OptimSettings, create_optimizer

    model = torch.nn.Linear(2, 2)
    optimizer = create_optimizer("adam", model, OptimSettings(1e-3, momentum=0.8))
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.999)
    assert create_optimizer("adamw", model, OptimSettings(1e-3)).param_groups[0]["betas"] == (0.9, 0.999)


def test_data_dir_subset_and_progressive_resize_that_do_nothing_are_warned_about(caplog, blobs_npz, tmp_path):
    with caplog.at_level(logging.WARNING, logger="convcoach"):
        bundle = load_data(f"npz:{blobs_npz}", SourceOptions(data_dir=str(tmp_path)), 0.1, subset=500)
        Trainer(small_config(blobs_npz, tmp_path / "run", epochs=1, progressive_resize="12", report=False)).fit()
    assert len(bundle.train) == 129  # 180 blobs: 36 held out for test, 15 for validation, all the rest kept
    assert caplog.messages == [
        f"ignoring data_dir {tmp_path}: 'npz:{blobs_npz}' does not read it "
        "(data_dir is where fashion-mnist, mnist, cifar10, cifar100 are found or downloaded)",
        "subset 500 is not smaller than the 129 training images: training on all of them",
        "progressive_resize starts at 12 px, and the images are 12x12 already: it has no effect",
    ]


def test_a_user_model_that_does_not_fit_the_data_is_a_one_line_error(blobs_npz, tmp_path):
    import torch.nn as nn

    config = small_config(blobs_npz, tmp_path / "run")
    with pytest.raises(
        ConfigError,
        match=r"the model given to the Trainer cannot take this data's 1x12x12 \(CxHxW\) images: mat1 and mat2 shapes",
    ):
        Trainer(config, model=nn.Sequential(nn.Flatten(), nn.Linear(784, 3)))
    with pytest.raises(
        ConfigError, match=r"returns \(5,\) per image; the data has 3 classes, so it must return \(3,\) logits"
    ):
        Trainer(config, model=nn.Sequential(nn.Flatten(), nn.Linear(144, 5)))
    assert Trainer(config, model=nn.Sequential(nn.Flatten(), nn.Linear(144, 3))).spec["name"] == "custom"


def test_a_missing_folder_is_named_as_such_not_as_an_unknown_dataset():
    with pytest.raises(
        ConfigError,
        match=r"data './nofolder': no such folder \(a path must be an existing image folder or a \.npz file\)",
    ):
        TrainConfig(data="./nofolder").validate()
    with pytest.raises(ConfigError, match=r"unknown dataset 'fashion-mnst' \(did you mean 'fashion-mnist'\?\)"):
        TrainConfig(data="fashion-mnst").validate()


def test_eval_on_data_whose_class_names_differ_warns(blobs_npz, tmp_path, caplog):
    from convcoach.infer import load_split, load_trained

    Trainer(small_config(blobs_npz, tmp_path / "run", epochs=1, report=False)).fit()
    x, y = np.load(blobs_npz)["x"], np.load(blobs_npz)["y"]
    np.savez(tmp_path / "named.npz", x=x, y=y, classes=np.array(["cat", "dog", "2"]))
    trained = load_trained(tmp_path / "run" / "best.pt")
    with caplog.at_level(logging.WARNING, logger="convcoach"):
        load_split(trained, f"npz:{tmp_path / 'named.npz'}")
    assert caplog.messages == [
        f"'npz:{tmp_path / 'named.npz'}' names its classes differently from {tmp_path / 'run' / 'best.pt'} "
        "(class 0: 0 vs cat, 1: 1 vs dog); scores assume class i is the same in both"
    ]
