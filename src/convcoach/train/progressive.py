"""Progressive resizing (fastai; Howard 2018, Tan & Le 2021): early epochs train on downscaled images,
which are cheaper, and the size grows linearly to the full size over the first part of the run.
Validation and test always see full-size images."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..registry import spec_check
from .callbacks import Callback, Priority
from .distributed import unwrap

if TYPE_CHECKING:
    from .loop import Trainer

log = logging.getLogger("convcoach")


def parse_progressive(spec: str | None) -> tuple[int, float] | None:
    """'START[:FRACTION]' -> (start size in px, fraction of the epochs the ramp lasts; default 0.5)."""
    if not spec or str(spec).lower() == "none":
        return None
    start_text, _, fraction_text = str(spec).partition(":")
    try:
        start, fraction = int(start_text), float(fraction_text or 0.5)
    except ValueError:
        raise ConfigError(
            f"progressive_resize: '{spec}' is not START[:FRACTION], "
            "e.g. 16:0.5 (16 px growing to full size over half the epochs)"
        ) from None
    if start < 4 or not 0.0 < fraction <= 1.0:
        raise ConfigError(f"progressive_resize: '{spec}' needs START >= 4 px and FRACTION in (0, 1]")
    return start, fraction


def size_at(epoch: int, epochs: int, start: int, full: int, fraction: float) -> int:
    """The training side length in epoch `epoch` (from 0): start -> full linearly over
    round(fraction * epochs) epochs, rounded to an even size; full afterwards."""
    ramp = max(1, round(fraction * epochs))
    if epoch >= ramp or start >= full:
        return full
    size = start + (full - start) * epoch / ramp
    return min(full, 2 * int(size / 2 + 0.5))


class ProgressiveResize(Callback):
    """Downscales each training batch (bilinear, antialiased) to this epoch's size: `on_batch_start`."""

    order = Priority.PROGRESSIVE_RESIZE  # before mixup/cutmix, so boxes are cut at the size the network sees

    def __init__(self, start: int, fraction: float = 0.5) -> None:
        self.start, self.fraction = start, fraction

    def on_train_start(self, trainer: Trainer) -> None:
        """Fail at once, in words, if the model cannot take the smallest images (too much pooling)."""
        channels, height, width = trainer.data.shape
        if self.start >= min(height, width):
            log.warning(
                "progressive_resize starts at %d px, and the images are %dx%d already: it has no effect",
                self.start,
                height,
                width,
            )
            return
        side = size_at(0, trainer.config.epochs, self.start, min(height, width), self.fraction)
        probe = torch.zeros(2, channels, *_resized(height, width, side), device=trainer.device)
        model = unwrap(trainer.model)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                model(probe)
        except RuntimeError as exc:
            raise ConfigError(
                f"progressive_resize '{self.start}:{self.fraction:g}': "
                f"the model cannot take {probe.shape[2]}x{probe.shape[3]} px images "
                f"({str(exc).splitlines()[0]}); "
                f"use a larger START (the images are {height}x{width}) or no progressive resizing"
            ) from None
        finally:
            model.train(was_training)

    def on_batch_start(self, trainer: Trainer, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = x.shape[-2:]
        side = size_at(trainer.state.epoch, trainer.config.epochs, self.start, min(height, width), self.fraction)
        if side >= min(height, width):
            return x, y
        x = F.interpolate(x, size=_resized(height, width, side), mode="bilinear", antialias=True, align_corners=False)
        return (x.contiguous(memory_format=torch.channels_last) if trainer.config.channels_last else x), y


def _resized(height: int, width: int, side: int) -> tuple[int, int]:
    """(height, width) scaled so that the shorter side is `side`."""
    scale = side / min(height, width)
    return round(height * scale), round(width * scale)


@spec_check("progressive")
def _check_progressive(value: str | None, config: object) -> None:
    parse_progressive(value)
