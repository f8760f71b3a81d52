"""The callbacks every run has: explosion guard, early stopping, metrics log, checkpoints, progress."""

from __future__ import annotations

import json
import math
import sys
import time
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import write_error
from ..files import dumps_json, json_number, write_text

if TYPE_CHECKING:
    from torch import Tensor

    from .loop import Trainer


class Priority(IntEnum):
    """Every built-in callback's slot, in one table: on each event the lowest runs first (ties, for user
    callbacks, run in list order: the Trainer's defaults, then the callbacks passed to it).
    No two built-ins share a slot (tests/train/test_callbacks_priority.py)."""

    PROGRESSIVE_RESIZE = 4  # batch_start first: mixing cuts its boxes at the size the network sees
    MAX_NORM = 5  # batch_end right after the optimizer step: weights are constrained before anyone reads them
    WEIGHT_AVERAGE = 6  # after max-norm: the EMA averages the constrained weights, before monitors read them
    FREEZE_NORM_STATS = 7  # transfer: re-freezes BatchNorm at batch_start (after the resize; shares no hook with EMA)
    EXPLOSION_GUARD = 10  # judges the loss before early stopping, monitors and the logger act on it
    EARLY_STOPPING = 20  # its stop reason comes before a tuning prune's (the first reason is kept)
    MIX_BATCHES = 30  # mixes the already resized batch (batch_start)
    TUNE_PRUNING = 31  # tuning: after early stopping and mixing, before the logger and checkpoints
    DEFAULT = 50  # a callback that names no slot
    MONITORS = 70  # after the explosion guard, before the metrics logger flushes their rows
    CLIP_GRAD = 75  # last on before_optimizer_step: the instruments (70) and user callbacks see true gradients
    METRICS_LOGGER = 80  # writes the epoch's row once the stop decisions are made
    LOG_SINKS = 82  # --log tensorboard/mlflow/csv (logs/): after the monitors' rows, flushed before the checkpoint
    TIME_BUDGET = 85  # after early stopping, before the checkpointer saves the re-planned length
    CHECKPOINTER = 90  # saves once everything before it has updated its state
    PROGRESS = 95  # prints the epoch's line last
    DIAGNOSIS = 97  # after the monitors have added their summaries
    REPORT = 99  # draws report.html at run end, from the summary the others completed


class Callback:
    """Hooks into the loop's events; `order` sets who runs first; state goes into checkpoints.

    Every hook the Trainer calls is declared here with a do-nothing default: override the ones you need."""

    order: int = Priority.DEFAULT
    Priority = Priority  # the slot table, reachable as Callback.Priority where only Callback is imported

    def on_train_start(self, trainer: Trainer) -> None:
        """Once before the first epoch (also when resuming: `trainer.resumed` says so)."""

    def on_epoch_start(self, trainer: Trainer) -> None:
        """At the start of each training epoch, before its first batch."""

    def on_batch_start(self, trainer: Trainer, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Before each training step: may replace the batch (mixup, cutmix, resizing); returns (x, y)."""
        return x, y

    def on_before_optimizer_step(self, trainer: Trainer) -> None:
        """After backward (of a group's last micro-batch with --accumulate), before optimizer.step; gradients
        are unscaled (fp16) and all-reduced (DDP); --clip-grad clips them here, after the other callbacks."""

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        """After each optimizer step, with the batch's loss (with --accumulate, the mean over its micro-batches)."""

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        """After each epoch's validation, with the epoch's metrics (before on_epoch_end)."""

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        """At the end of each epoch, with its metrics."""

    def on_checkpoint(self, trainer: Trainer) -> None:
        """A mid-epoch save (`checkpoint_every`, or a signal): flush what last.pt must not lose."""

    def on_train_end(self, trainer: Trainer) -> None:
        """Once after the last epoch (or the stop), before the final test."""

    def on_summary(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        """Add keys to summary.json."""

    def on_run_end(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        """After summary.json is written (rank 0, runs with a summary): the report is drawn here."""

    @property
    def state_key(self) -> str:
        """The key of this callback's `state_dict` in a checkpoint's "callbacks" entry: the class name by
        default. The Trainer de-duplicates keys when two instances of one class are in a run; override it
        to give an instance a stable name of its own."""
        return type(self).__name__

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to carry on (JSON-able or tensors); saved in every checkpoint."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict`'s output when a run resumes."""


class ExplosionGuard(Callback):
    """Stops at once on a NaN/inf loss or a loss above `factor` x the first one (the lectures' abort rule)."""

    order = Priority.EXPLOSION_GUARD

    def __init__(self, factor: float = 3.0) -> None:
        self.factor = factor
        self.initial: float | None = None

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        if self.initial is None and math.isfinite(loss):
            self.initial = loss
        if not math.isfinite(loss) or (self.initial is not None and loss > self.factor * self.initial):
            what = (
                "NaN/inf" if not math.isfinite(loss) else f"{loss:.3g} > {self.factor:g} x initial {self.initial:.3g}"
            )
            lr = trainer.optimizer.param_groups[0]["lr"]
            trainer.stop(
                "diverged",
                f"loss exploded at iteration {trainer.state.step} ({what}); "
                f"the learning rate ({lr:.3g}) is the likely cause: try 3-10x lower",
            )

    def state_dict(self) -> dict[str, Any]:
        return {"initial": self.initial}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.initial = state["initial"]


class EarlyStopping(Callback):
    """Stop when the (optionally EMA-smoothed) validation metric has not improved by min_delta for `patience` epochs."""

    order = Priority.EARLY_STOPPING

    def __init__(self, patience: int, min_delta: float = 0.0, smoothing: float = 0.0, monitor: str = "val_acc") -> None:
        self.patience, self.min_delta, self.smoothing, self.monitor = patience, min_delta, smoothing, monitor
        self.smoothed: float | None = None
        self.best: float | None = None
        self.bad_epochs = 0

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        value = metrics.get(self.monitor)
        if value is None:
            return
        sign = -1.0 if self.monitor.endswith("loss") else 1.0
        # validation error fluctuates: compare an exponential moving average, not the raw value
        self.smoothed = (
            value if self.smoothed is None else self.smoothing * self.smoothed + (1 - self.smoothing) * value
        )
        score = sign * self.smoothed
        if self.best is None or score > self.best + self.min_delta:
            self.best, self.bad_epochs = score, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.patience:
                trainer.stop("early_stopping", f"{self.monitor} has not improved for {self.patience} epochs")

    def state_dict(self) -> dict[str, Any]:
        return {"smoothed": self.smoothed, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.smoothed, self.best, self.bad_epochs = state["smoothed"], state["best"], state["bad_epochs"]


class MetricsLogger(Callback):
    """Per-iteration loss and per-epoch metrics as JSON lines in RUN_DIR/metrics.jsonl."""

    order = Priority.METRICS_LOGGER

    def __init__(self, path: Path, every: int = 1) -> None:
        self.path, self.every = Path(path), every
        self.handle = None
        self.rows: list[str] = []

    def on_train_start(self, trainer: Trainer) -> None:
        if trainer.resumed and self.path.exists():
            # drop what was logged after the checkpoint: those iterations are replayed
            keep = []
            for line in self.path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by the kill: its iteration is redone
                if not isinstance(row, dict) or "kind" not in row:
                    continue
                if (row["kind"] == "epoch" and row["epoch"] <= trainer.state.epoch) or (
                    row["kind"] != "epoch" and row.get("step", 0) <= trainer.state.step
                ):
                    keep.append(line + "\n")
            write_text(self.path, "".join(keep))
        elif self.path.exists():
            self.path.unlink()
        self.handle = open(self.path, "a")

    def log(self, row: dict[str, Any]) -> None:
        self.rows.append(dumps_json(row) + "\n")

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        if trainer.state.step % self.every == 0:
            self.rows.append(
                f'{{"kind": "iter", "step": {trainer.state.step}, "epoch": {trainer.state.epoch}, '
                f'"loss": {json_number(loss)}, "lr": {json_number(trainer.optimizer.param_groups[0]["lr"])}}}\n'
            )

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self.rows.append(dumps_json({"kind": "epoch", **metrics}) + "\n")
        self.flush()

    def on_checkpoint(self, trainer: Trainer) -> None:
        self.flush()  # before last.pt: a resume trims rows past the checkpoint, it cannot recover lost ones

    def flush(self) -> None:
        if self.handle:
            try:
                self.handle.writelines(self.rows)
                self.handle.flush()
            except OSError as exc:  # a full disk: one line naming metrics.jsonl, not a traceback
                raise write_error(self.path, exc, sum(len(row) for row in self.rows)) from None
            self.rows = []

    def on_train_end(self, trainer: Trainer) -> None:
        self.flush()
        if self.handle:
            self.handle.close()
            self.handle = None


class Checkpointer(Callback):
    """last.pt after every epoch (and every `checkpoint_every` iterations), best.pt when the validation
    metric improves (the training accuracy when there is no validation split; `metric` says which one chose)."""

    order = Priority.CHECKPOINTER

    def __init__(self, run_dir: Path, monitor: str = "val_acc") -> None:
        self.run_dir, self.monitor = Path(run_dir), monitor
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.metric: str | None = None

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self.metric = self.monitor if self.monitor in metrics else "train_acc"
        value = metrics.get(self.metric)
        improved = value is not None and (self.best is None or value > self.best)
        if improved:
            self.best, self.best_epoch = value, metrics["epoch"]
        payload = trainer.checkpoint_payload()
        if improved:  # best.pt holds the weights that were validated: the EMA ones when averaging
            trainer.save({**payload, "model_state": trainer.inference_state()}, self.run_dir / "best.pt")
        trainer.save(payload, self.run_dir / "last.pt")

    def on_checkpoint(self, trainer: Trainer) -> None:
        trainer.save(trainer.checkpoint_payload(), self.run_dir / "last.pt")

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "metric": self.metric}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.metric = state["best"], state["best_epoch"], state.get("metric")


class Progress(Callback):
    """A rich progress bar with ETA on a terminal; one line per epoch otherwise; nothing when quiet."""

    order = Priority.PROGRESS

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar = None
        self.interactive = sys.stderr.isatty()

    def on_train_start(self, trainer: Trainer) -> None:
        if self.quiet or not self.interactive:
            return
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self.bar.start()
        self.task = self.bar.add_task("train", total=trainer.total_steps, completed=trainer.state.step, info="")

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(
                self.task,
                completed=trainer.state.step,
                total=trainer.total_steps,
                description=f"epoch {trainer.state.epoch + 1}/{trainer.config.epochs}",
                info=f"loss {loss:.4f}",
            )

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        if self.quiet:
            return
        parts = [f"epoch {metrics['epoch']}/{trainer.config.epochs}"] + [
            f"{k} {v:.4f}" for k, v in metrics.items() if k not in ("epoch", "time", "lr") and isinstance(v, float)
        ]
        parts.append(f"lr {metrics['lr']:.3g}  {metrics['time']:.0f}s")
        line = "  ".join(parts)
        if self.bar is not None:
            self.bar.console.print(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def on_train_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def now() -> float:
    return time.perf_counter()
