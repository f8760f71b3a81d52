"""Progressive resizing: the size schedule, the downscaled batches, the config key."""

from __future__ import annotations

import pytest
import torch
from conftest import small_config

from convcoach import ConfigError, Trainer
from convcoach.train.callbacks import Callback
from convcoach.train.progressive import ProgressiveResize, parse_progressive, size_at


def test_spec_parses_start_and_fraction_with_a_default_half():
    assert parse_progressive("16:0.25") == (16, 0.25)
    assert parse_progressive("16") == (16, 0.5)
    assert parse_progressive(None) is None and parse_progressive("none") is None
    with pytest.raises(ConfigError, match=r"progressive_resize: 'big' is not START\[:FRACTION\], e.g. 16:0.5"):
        parse_progressive("big")
    with pytest.raises(ConfigError, match=r"needs START >= 4 px and FRACTION in \(0, 1\]"):
        parse_progressive("16:1.5")


def test_size_grows_linearly_to_full_over_the_ramp_then_stays():
    # 12 epochs, ramp over half of them (6): 16, 18, 20, 22, 24, 26, then 28
    assert [size_at(e, 12, 16, 28, 0.5) for e in range(12)] == [16, 18, 20, 22, 24, 26] + [28] * 6
    assert [size_at(e, 3, 8, 28, 1.0) for e in range(3)] == [8, 14, 22]  # 8 + 20/3 per epoch, even sizes
    assert size_at(0, 10, 40, 28, 0.5) == 28  # a start above the full size is the full size


class _Sizes(Callback):
    order = 5

    def __init__(self) -> None:
        self.sizes = []

    def on_batch_start(self, trainer, x, y):
        self.sizes.append((trainer.state.epoch, tuple(x.shape[-2:])))
        return x, y


def test_training_batches_shrink_but_evaluation_sees_full_size(blobs_npz, tmp_path):
    sizes = _Sizes()
    trainer = Trainer(
        small_config(blobs_npz, tmp_path / "run", epochs=8, progressive_resize="6:0.5", report=False), callbacks=[sizes]
    )
    summary = trainer.fit()
    per_epoch = {epoch: shape for epoch, shape in sizes.sizes}
    assert per_epoch == {0: (6, 6), 1: (8, 8), 2: (10, 10), 3: (10, 10)} | {
        e: (12, 12) for e in range(4, 8)
    }  # blobs are 12 x 12
    assert (
        summary["data"]["shape"] == [1, 12, 12] and summary["test_accuracy"] >= 0.8
    )  # deterministic: 0.83 (the full-size run: 1.0)


def test_downscaling_averages_pixels_and_keeps_the_layout():
    x = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(2, 3, 1, 1).contiguous(memory_format=torch.channels_last)

    class _Stub:
        class config:
            epochs, channels_last = 2, True

        class state:
            epoch = 0

    out, _ = ProgressiveResize(4, 1.0).on_batch_start(_Stub, x, None)  # epoch 0 of 2 at ramp 1.0: 4 px, no-op
    assert out is x
    callback = ProgressiveResize(2, 1.0)
    small, _ = callback.on_batch_start(_Stub, x, None)
    assert small.shape == (2, 3, 2, 2) and small.is_contiguous(memory_format=torch.channels_last)
    # the antialiasing filter's weights sum to one: a flat image stays flat, a ramp stays ordered
    flat, _ = callback.on_batch_start(_Stub, torch.full((1, 1, 4, 4), 7.0), None)
    assert flat.flatten().tolist() == pytest.approx([7.0] * 4)
    assert small[0, 0, 0, 0] < small[0, 0, 0, 1] < small[0, 0, 1, 0] < small[0, 0, 1, 1]


def test_cli_flags_set_both_options_and_a_bad_spec_is_one_line_exit_2(capsys):
    from convcoach.cli import build_parser, config_from_args, main

    config = config_from_args(build_parser().parse_args(["train", "--progressive-resize", "14:0.3", "--ema", "0.999"]))
    assert (config.progressive_resize, config.ema) == ("14:0.3", 0.999)
    assert main(["train", "--progressive-resize", "big", "--epochs", "1"]) == 2
    assert "progressive_resize: 'big' is not START[:FRACTION]" in capsys.readouterr().err


def test_a_start_too_small_for_the_models_pooling_is_a_clear_error(blobs_npz, tmp_path):
    # the 3-stage cnn pools 12 -> 6 -> 3 -> 1: 4 px images pool to nothing
    config = small_config(blobs_npz, tmp_path / "run", depth=3, progressive_resize="4:0.5", report=False)
    with pytest.raises(
        ConfigError,
        match=(
            r"progressive_resize '4:0.5': the model cannot take 4x4 px images .* "
            r"use a larger START \(the images are 12x12\)"
        ),
    ):
        Trainer(config).fit()
