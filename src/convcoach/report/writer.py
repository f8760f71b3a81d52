"""Writes RUN_DIR/report.html at the end of every run that asks for it (`report: true`, the default)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import TrainConfig
from ..train.callbacks import Callback, Priority
from ..train.distributed import unwrap
from ..train.extensions import RUN_CALLBACKS

if TYPE_CHECKING:
    from ..train.loop import Trainer


class ReportWriter(Callback):
    """After summary.json: the report of the run's files, model and test predictions (without the
    test split, as in tuning trials, it shows validation examples)."""

    order = Priority.REPORT

    def on_run_end(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        from .run_report import RunArtifacts, write_run_report  # matplotlib loads only when a report is drawn

        result = trainer.test_result
        artifacts = RunArtifacts(
            unwrap(trainer.model),
            trainer.normalizer,
            list(trainer.data.classes),
            trainer.data,
            result.probabilities if result else None,
            result.labels if result else None,
            "test" if result else "val",
            trainer.config.augment_pipeline(),
        )
        write_run_report(trainer.run_dir, artifacts)


@RUN_CALLBACKS.register("report")
def report_callbacks(config: TrainConfig, is_main: bool) -> list[Callback]:
    return [ReportWriter()] if config.report and is_main else []
