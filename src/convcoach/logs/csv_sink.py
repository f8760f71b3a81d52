"""`--log csv`: RUN_DIR/metrics.csv, one row per epoch under a fixed header, and RUN_DIR/iterations.csv,
one row per iteration: plain files any spreadsheet or `pandas.read_csv` reads."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import atomic_write_bytes, write_error
from .sinks import LogSinkCallback, register_logger

if TYPE_CHECKING:
    from ..train.loop import Trainer

EPOCH_COLUMNS = ("epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "time")
ITERATION_COLUMNS = ("step", "epoch", "loss", "lr")


class CsvTable:
    """One CSV file under a fixed header; rows are buffered and appended on `flush`. A resumed run keeps
    the whole rows up to its checkpoint (`keep(row)`) and appends after them."""

    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self.path, self.columns = path, columns
        self.pending: list[dict[str, Any]] = []

    def start(self, keep: Any | None) -> None:
        """A fresh file with its header, or (`keep`: row -> bool) the rows a resumed run keeps."""
        lines = [",".join(self.columns) + "\n"]
        if keep is not None and self.path.exists():
            text = self.path.read_text()
            whole = [line for line in text.splitlines(keepends=True)[1:] if line.endswith("\n")]  # a cut row goes
            rows = csv.DictReader(io.StringIO("".join([lines[0], *whole])))  # one row per line: no value has a newline
            lines += [line for line, row in zip(whole, rows) if keep(row)]
        data = "".join(lines).encode()
        atomic_write_bytes(self.path, lambda handle: handle.write(data), len(data))

    def add(self, row: dict[str, Any]) -> None:
        self.pending.append(row)

    def flush(self) -> None:
        if not self.pending:
            return
        buffer = io.StringIO()
        csv.DictWriter(buffer, self.columns, extrasaction="ignore", lineterminator="\n").writerows(self.pending)
        try:
            with open(self.path, "a") as handle:
                handle.write(buffer.getvalue())
        except OSError as exc:  # a full disk: one line naming the file
            raise write_error(self.path, exc, len(buffer.getvalue())) from None
        self.pending = []


@register_logger("csv")
class CsvLogger(LogSinkCallback):
    """Epoch rows (EPOCH_COLUMNS; an empty cell where the run has no such value, e.g. no validation
    split) and iteration rows (ITERATION_COLUMNS), written at each epoch end and mid-epoch checkpoint."""

    def on_train_start(self, trainer: Trainer) -> None:
        self.epochs = CsvTable(trainer.run_dir / "metrics.csv", EPOCH_COLUMNS)
        self.iterations = CsvTable(trainer.run_dir / "iterations.csv", ITERATION_COLUMNS)
        epoch, step = trainer.state.epoch, trainer.state.step
        self.epochs.start((lambda row: int(row["epoch"]) <= epoch) if trainer.resumed else None)
        self.iterations.start((lambda row: int(row["step"]) <= step) if trainer.resumed else None)

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        state = trainer.state
        self.iterations.add({"step": state.step, "epoch": state.epoch, "loss": loss, "lr": self.lr(trainer)})

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self.epochs.add(metrics)
        self.on_checkpoint(trainer)

    def on_checkpoint(self, trainer: Trainer) -> None:
        self.iterations.flush()
        self.epochs.flush()

    def on_train_end(self, trainer: Trainer) -> None:
        self.on_checkpoint(trainer)
