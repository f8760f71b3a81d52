"""The run report: RUN_DIR/report.html, written at the end of `train` and rebuilt by `convcoach report`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from ..data import DataBundle, Normalizer, Split
from ..errors import ConfigError
from ..evaluate.tta import accuracy_with_tta
from ..render.html import Page
from .run_files import RunFiles, load_run
from .sections import (
    coach_sections,
    config_section,
    curves_section,
    data_section,
    monitor_section,
    overview_section,
)
from .tuning_section import tuning_section

log = logging.getLogger("convcoach")

OCCLUSION_EXAMPLES = 4


@dataclass
class RunArtifacts:
    """What the report draws beyond the run's files: the trained model, its data and its test predictions."""

    model: nn.Module
    normalizer: Normalizer
    classes: list[str]
    data: DataBundle | None = None
    probabilities: torch.Tensor | None = None  # (N, C) on `split_name`
    labels: torch.Tensor | None = None
    split_name: str = (
        "test"  # whose predictions and examples are shown; "val" for runs that never read the test set (tuning trials)
    )
    augment: list[str] | None = (
        None  # the training augmentation specs (TrainConfig.augment_pipeline()); None: config.yaml's `augment`
    )

    @property
    def split(self) -> Split | None:
        return getattr(self.data, self.split_name, None) if self.data else None


def write_run_report(run_dir: str | Path, artifacts: RunArtifacts | None = None, out: str | Path | None = None) -> Path:
    """Build report.html for a run; without `artifacts` the best checkpoint and the data are loaded and the test
    split re-evaluated."""
    run = load_run(run_dir)
    note = ""
    if artifacts is None:
        artifacts, note = load_artifacts(run)
        if note:
            log.warning("report: %s", note)
    summary = run.summary
    subtitle = f"status {summary.get('status', 'unknown')}"
    if summary.get("test_accuracy") is not None:
        subtitle += f" · test accuracy {accuracy_with_tta(summary)}"
    page = Page(f"convcoach run {run.name}", subtitle)
    overview_section(page, run)
    if note:
        page.sections[-1].note(note)
    config_section(page, run)
    data_section(
        page,
        run,
        artifacts.data if artifacts else None,
        artifacts.normalizer if artifacts else None,
        note,
        artifacts.augment if artifacts else None,
    )
    curves_section(page, run)
    coach_sections(page, run)
    monitor_section(page, run)
    if artifacts is not None:
        _evaluation(page, artifacts, summary.get("tta"))
    _inspection(page, artifacts, run.path / "inspect")
    tuning_section(page, run)
    return page.write(Path(out) if out else run.path / "report.html")


def _evaluation(page: Page, artifacts: RunArtifacts, tta: str | None) -> None:
    from ..evaluate.metrics import compute_metrics
    from ..evaluate.outputs import add_evaluation_sections, evaluation_figures

    if artifacts.probabilities is None or artifacts.labels is None or len(artifacts.labels) == 0:
        return
    metrics = compute_metrics(artifacts.probabilities, artifacts.labels)
    figures = evaluation_figures(metrics, artifacts.classes, artifacts.split)
    note = f"Without test-time augmentation; the header's accuracy uses {tta} TTA." if tta else ""
    add_evaluation_sections(page, metrics, artifacts.classes, figures, artifacts.split_name, note)


def _inspection(page: Page, artifacts: RunArtifacts | None, folder: Path) -> None:
    """First-layer filters and occlusion examples, then what a `convcoach inspect` wrote into RUN_DIR/inspect
    (which wins)."""
    from ..data.samples import examples, split_images
    from ..inspect.run import add_findings, filters_finding, load_findings, occlusion_finding

    in_shape = tuple(artifacts.data.shape) if artifacts and artifacts.data else None
    findings = []
    if in_shape is not None:
        findings.append(filters_finding(artifacts.model, in_shape))
        split = artifacts.split
        chosen = examples(split.labels, len(artifacts.classes), OCCLUSION_EXAMPLES) if split is not None else []
        if chosen:
            targets = [int(split.labels[i]) for i in chosen]
            captions = [f"{artifacts.split_name} #{i}: {artifacts.classes[t]}" for i, t in zip(chosen, targets)]
            findings.append(
                occlusion_finding(artifacts.model, artifacts.normalizer, split_images(split, chosen), targets, captions)
            )
    if (folder / "inspect.json").is_file():
        inspected = load_findings(folder)
        keys = {f.key for f in inspected}
        findings = [f for f in findings if f.key not in keys] + inspected
    add_findings(page, findings, prefix="")


def load_artifacts(run: RunFiles) -> tuple[RunArtifacts | None, str]:
    """The best checkpoint, the run's data and the test predictions; what could not be loaded is said in the note."""
    from ..data import BatchLoader
    from ..evaluate.passes import evaluate
    from ..infer import load_trained
    from ..train.losses import create_loss
    from ..train.setup import load_run_data

    try:
        trained = load_trained(run.path)
    except ConfigError as exc:
        return None, f"model sections skipped: {exc}"
    config = trained.config
    try:
        data = load_run_data(config)
    except ConfigError as exc:
        return RunArtifacts(
            trained.model, trained.normalizer, trained.classes
        ), f"data sections skipped, the data did not load: {exc}"
    loader = BatchLoader(data.test, 512, trained.normalizer)
    result = evaluate(trained.model, loader, create_loss(config.loss), len(trained.classes))
    return RunArtifacts(
        trained.model,
        trained.normalizer,
        trained.classes,
        data,
        result.probabilities,
        result.labels,
        "test",
        config.augment_pipeline(),
    ), ""
