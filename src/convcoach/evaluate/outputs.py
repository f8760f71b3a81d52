"""What an evaluation shows: the figures (confusion matrix, reliability diagram, confident mistakes),
the report sections, and the files `convcoach eval` writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..data import Split
from ..errors import ConfigError
from ..render import figures as plots
from ..render.html import Page
from .metrics import ClassificationMetrics, compute_metrics


def evaluation_figures(metrics: ClassificationMetrics, classes: list[str], split: Split | None) -> dict[str, bytes]:
    """PNG bytes by name; the mistakes grid needs the split's images (skipped without them or without mistakes)."""
    from ..data.samples import split_images

    bins = metrics.reliability
    figures = {
        "confusion": plots.confusion_plot(metrics.matrix, classes),
        "reliability": plots.reliability_plot(bins.edges, bins.accuracy, bins.confidence, bins.counts, metrics.ece),
    }
    if split is not None and metrics.mistakes:
        tiles = plots.to_display(split_images(split, metrics.mistakes))
        titles = [
            f"true {classes[int(metrics.labels[i])]}\n"
            f"pred {classes[int(metrics.predictions[i])]} {float(metrics.confidences[i]):.2f}"
            for i in metrics.mistakes
        ]
        figures["mistakes"] = plots.image_grid(tiles, columns=8, titles=titles, tile_inches=1.3)
    return figures


def add_evaluation_sections(
    page: Page,
    metrics: ClassificationMetrics,
    classes: list[str],
    figures: dict[str, bytes],
    split_name: str = "test",
    note: str = "",
) -> None:
    """Sections: accuracy and per-class scores (with `note` first), confusion matrix, calibration, top mistakes."""
    section = page.section(f"Evaluation on the {split_name} split", "evaluation")
    if note:
        section.note(note)
    section.key_values(
        {
            "accuracy": metrics.accuracy,
            **{f"top-{k} accuracy": v for k, v in metrics.top_k.items()},
            "expected calibration error": metrics.ece,
            "images": len(metrics.labels),
        }
    )
    scores = metrics.scores
    section.heading("Per class")
    section.table(
        ["class", "precision", "recall (= class accuracy)", "F1", "images"],
        [
            [c, p, r, f, s]
            for c, p, r, f, s in zip(classes, scores["precision"], scores["recall"], scores["f1"], scores["support"])
        ],
    )
    confusion = page.section("Confusion matrix", "confusion-matrix")
    confusion.image(
        figures["confusion"],
        "confusion matrix",
        "Rows: true class, columns: predicted class; colour is the fraction of the row, numbers are counts.",
    )
    if len(classes) <= 30:
        confusion.table(
            ["true \\ predicted", *classes], [[c, *row] for c, row in zip(classes, metrics.matrix.tolist())]
        )
    calibration = page.section("Calibration", "calibration")
    calibration.image(
        figures["reliability"],
        "reliability diagram",
        f"Expected calibration error {metrics.ece * 100:.2f}% (Guo et al. 2017): "
        "bars below the diagonal are over-confident bins.",
    )
    mistakes = page.section("Most confidently wrong", "mistakes")
    if "mistakes" in figures:
        mistakes.image(
            figures["mistakes"],
            "most confidently wrong images",
            "The wrong predictions with the highest confidence: often label noise, or classes the net confuses.",
        )
    else:
        mistakes.note("No wrong predictions on this split.")


def write_evaluation(
    probabilities: torch.Tensor,
    labels: torch.Tensor,
    classes: list[str],
    split: Split | None,
    out: str | Path,
    title: str,
    top_k: int = 5,
    split_name: str = "test",
) -> dict[str, Any]:
    """confusion.png, reliability.png, mistakes.png and report.html in `out`; returns the metrics for summary.json."""
    if top_k < 1:
        raise ConfigError(f"--top-k must be >= 1, got {top_k}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = compute_metrics(probabilities, labels, top_k)
    figures = evaluation_figures(metrics, classes, split)
    for name, png in figures.items():
        (out / f"{name}.png").write_bytes(png)
    page = Page(title, "convcoach eval")
    add_evaluation_sections(page, metrics, classes, figures, split_name)
    page.write(out / "report.html")
    return metrics.to_dict(classes)
