"""--lr auto's range test runs at the run's precision: bf16 autocast where the run trains in bf16
(1.4-2.2x faster on an AVX512-BF16 CPU: benchmarks/lr_range_precision.py), fp32 otherwise."""

from __future__ import annotations

import torch
import torch.nn as nn

import convcoach.precision as precision_module
from convcoach.config import TrainConfig
from convcoach.train.losses import create_loss
from convcoach.train.lr_finder import SweepPlan, auto_lr, sweep_precision

CPU = torch.device("cpu")


def test_the_range_test_takes_the_runs_precision(monkeypatch) -> None:
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: True)
    assert sweep_precision(TrainConfig(precision="auto"), CPU) == "bf16"
    assert sweep_precision(TrainConfig(precision="fp32"), CPU) == "fp32"
    assert sweep_precision(TrainConfig(precision="bf16"), CPU) == "bf16"
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: False)
    assert sweep_precision(TrainConfig(precision="auto"), CPU) == "fp32"  # an AVX2 CPU trains in fp32


SEEN: list[bool] = []  # one entry per forward of any copy (the range test deep-copies the model)


class Recorder(nn.Module):
    """A linear classifier that notes whether each forward ran under CPU bf16 autocast."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        SEEN.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
        return self.net(x)


def range_test(precision: str) -> tuple[float | None, list[bool]]:
    """The chosen LR on two separable blobs of 4x4 images, and what each forward saw."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (600,), generator=generator)
    images = (torch.rand(600, 1, 4, 4, generator=generator) * 80 + labels.view(-1, 1, 1, 1) * 120).to(torch.uint8)
    config = TrainConfig(precision=precision, optimizer="sgd", batch_size=32, channels_last=False)
    loss = create_loss("cross_entropy")
    torch.manual_seed(0)
    model = Recorder()
    SEEN.clear()
    choice = auto_lr(
        config, model, images, labels, lambda x: (x.float() - 100) / 80, loss, loss, CPU, SweepPlan(batch=32)
    )
    return choice.lr, list(SEEN)


def test_a_bf16_run_sweeps_under_bf16_autocast_and_picks_the_lr_fp32_picks() -> None:
    fp32_lr, fp32_seen = range_test("fp32")
    bf16_lr, bf16_seen = range_test("bf16")
    assert fp32_seen and not any(fp32_seen)
    assert bf16_seen and all(bf16_seen)  # every training step and every probe forward
    # 7 LRs (0.1 x 10^(k/2), k = -4..2) x 8 steps, one probe before and one after each: the same in both
    assert len(bf16_seen) == len(fp32_seen) == 1 + 7 * (8 + 1)
    assert fp32_lr == bf16_lr == 1.0
