"""`--log tensorboard`: event files in RUN_DIR/tensorboard: the loss and LR per iteration, the epoch metrics,
the coach's monitors and weight/activation histograms at the monitor interval, and at the end the confusion
matrix, sample predictions and the run's options as hparams. Every event's step is the iteration."""

from __future__ import annotations

import io
import json
import math
import shutil
from typing import TYPE_CHECKING, Any

import numpy as np

from ..coach.monitors import SampledMonitor
from ..data.samples import examples, split_images
from ..evaluate.metrics import confusion_matrix
from ..train.distributed import unwrap
from .sinks import LogSinkCallback, epoch_values, register_logger

if TYPE_CHECKING:
    from ..config import TrainConfig
    from ..evaluate.passes import Evaluation
    from ..train.loop import Trainer

HPARAM_METRICS = ("test_accuracy", "test_loss", "best_val_acc")  # summary.json's figures beside the options
SAMPLE_PREDICTIONS = 16


@register_logger("tensorboard", package="tensorboard", extra="tensorboard")
class TensorBoardLogger(LogSinkCallback):
    """Scalars, histograms and images for `tensorboard --logdir RUN_DIR` (a tune directory: one subfolder
    per trial). A resumed run appends to the same folder; TensorBoard hides what was logged after the
    checkpoint (`purge_step`), so no step shows twice."""

    def on_train_start(self, trainer: Trainer) -> None:
        from torch.utils.tensorboard import SummaryWriter

        folder = trainer.run_dir / "tensorboard"
        if not trainer.resumed:  # a run started over: its curves, not those of an earlier start
            shutil.rmtree(folder, ignore_errors=True)
        self.writer = SummaryWriter(str(folder), purge_step=trainer.state.step + 1 if trainer.resumed else None)
        self.monitors = [c for c in trainer.callbacks if isinstance(c, SampledMonitor)]
        self.weights = [(name, p) for name, p in unwrap(trainer.model).named_parameters() if p.dim() > 1]

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        step = trainer.state.step
        self.writer.add_scalar("iteration/loss", loss, step)
        self.writer.add_scalar("iteration/lr", self.lr(trainer), step)
        if not self.due(step):
            return
        for name, weight in self.weights:
            values = weight.detach().float()
            values = values[values.isfinite()]  # a diverging step's NaNs would break the histogram
            if values.numel():
                self.writer.add_histogram(f"weights/{name}", values, step)
        for monitor in self.monitors:  # they ran before this slot: their row of this step is in
            if monitor.last_row is not None and monitor.last_row["step"] == step:
                self.monitor_row(monitor.last_row, step)

    def monitor_row(self, row: dict[str, Any], step: int) -> None:
        """Each layer's numbers as `MONITOR/KEY/LAYER` scalars, the row's other numbers as `MONITOR/EXTRA/KEY`,
        and an activation row's histograms (the monitor's asinh bins) as `activations/LAYER`."""
        monitor = row["monitor"]
        for layer, values in row["layers"].items():
            for key, value in values.items():
                self.writer.add_scalar(f"{monitor}/{key}/{layer}", value, step)
        for extra, values in row.items():
            if extra == "hist":
                self.activation_histograms(values, step)
            elif extra != "layers" and isinstance(values, dict):
                for key, value in values.items():
                    if isinstance(value, (int, float)):
                        self.writer.add_scalar(f"{monitor}/{extra}/{key}", value, step)

    def activation_histograms(self, hist: dict[str, Any], step: int) -> None:
        """The ActivationMonitor's bins (even in asinh(value) over +-limit, as fractions) as TensorBoard
        histograms in activation units: no second pass over the activations."""
        limit = math.asinh(hist["limit"])
        edges = np.sinh(np.linspace(-limit, limit, hist["bins"] + 1))
        centers = (edges[:-1] + edges[1:]) / 2
        for layer, fractions in hist["layers"].items():
            counts = np.nan_to_num(np.asarray(fractions, dtype=np.float64))
            filled = np.flatnonzero(counts)
            if not len(filled):
                continue
            self.writer.add_histogram_raw(
                f"activations/{layer}",
                min=float(edges[filled[0]]),
                max=float(edges[filled[-1] + 1]),
                num=float(counts.sum()),
                sum=float((counts * centers).sum()),
                sum_squares=float((counts * centers**2).sum()),
                bucket_limits=edges[1:].tolist(),
                bucket_counts=counts.tolist(),
                global_step=step,
            )

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        for key, value in epoch_values(metrics).items():
            self.writer.add_scalar(f"epoch/{key}", value, metrics["step"])
        self.writer.flush()  # before the checkpointer: a resume purges only what came after last.pt

    def on_checkpoint(self, trainer: Trainer) -> None:
        self.writer.flush()

    def on_train_end(self, trainer: Trainer) -> None:
        self.writer.flush()

    def on_run_end(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        step = trainer.state.step
        if trainer.test_result is not None:  # tuning trials have no test pass: no images
            for tag, png in final_images(trainer, trainer.test_result).items():
                self.writer.add_image(tag, png_pixels(png), step, dataformats="HWC")
        self.hparams(trainer.config, summary, step)
        self.writer.close()

    def hparams(self, config: TrainConfig, summary: dict[str, Any], step: int) -> None:
        """The options in the HPARAMS tab, with the run's final figures as its metrics (written into this
        folder, not the subfolder SummaryWriter.add_hparams would make)."""
        from torch.utils.tensorboard.summary import hparams

        figures = {key: summary.get(key) for key in HPARAM_METRICS}
        metrics = {f"hparams/{key}": float(value) for key, value in figures.items() if isinstance(value, (int, float))}
        for event in hparams({k: hparam_value(v) for k, v in config.to_dict().items()}, metrics):
            self.writer.file_writer.add_summary(event)
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value, step)


def hparam_value(value: Any) -> bool | int | float | str:
    """A config value as TensorBoard's hparams take it: numbers, bools and strings as they are, the rest as text."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if value is None:
        return "none"
    return ",".join(map(str, value)) if isinstance(value, list) else json.dumps(value, default=str)


def final_images(trainer: Trainer, result: Evaluation) -> dict[str, bytes]:
    """PNGs of the test pass: the confusion matrix and a grid of predictions covering the classes."""
    from ..render import figures  # matplotlib loads only when a run ends with images to draw

    classes = list(trainer.data.classes)
    matrix = confusion_matrix(result.predictions, result.labels, len(classes))
    chosen = examples(result.labels, len(classes), SAMPLE_PREDICTIONS)
    titles = [
        f"true {classes[int(result.labels[i])]}\n"
        f"pred {classes[int(result.predictions[i])]} {float(result.probabilities[i].max()):.2f}"
        for i in chosen
    ]
    tiles = figures.to_display(split_images(trainer.data.test, chosen))
    return {
        "test/confusion_matrix": figures.confusion_plot(matrix, classes),
        "test/predictions": figures.image_grid(tiles, columns=8, titles=titles, tile_inches=1.3),
    }


def png_pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
