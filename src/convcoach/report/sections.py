"""Report sections built from a run's files: overview, config, data, curves, coach, monitors."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import torch

from ..data import DataBundle, Normalizer, parse_augment
from ..render import figures as plots
from ..render.html import Page, Section
from .run_files import RunFiles

OVERVIEW_KEYS = [
    "status",
    "stop_message",
    "test_accuracy",
    "test_loss",
    "best_val_acc",
    "best_epoch",
    "best_selected_by",
    "epochs_run",
    "steps",
    "train_seconds",
    "parameters",
    "init",
    "precision",
]


def overview_section(page: Page, run: RunFiles) -> None:
    section = page.section("Overview", "overview")
    summary = run.summary
    values = {key: summary[key] for key in OVERVIEW_KEYS if key in summary}
    values["run directory"] = str(run.path)
    if run.env:
        values["device"] = run.env.get("device")
        values["precision reason"] = run.env.get("precision_reason")
        if isinstance(run.env.get("lr_choice"), dict):  # --lr auto's range test: its choice and why
            values["lr chosen by --lr auto"] = run.env["lr_choice"].get("reason")
    section.key_values(values)
    if run.unreadable_rows:
        section.note(f"{run.unreadable_rows} line(s) of metrics.jsonl could not be read (a run killed mid-write).")


def config_section(page: Page, run: RunFiles) -> None:
    section = page.section("Configuration", "config")
    if run.config:
        section.note("The resolved configuration (config.yaml): every option, defaults included.")
        section.key_values(run.config, columns=3)
    else:
        section.note("config.yaml is missing.")


def data_section(
    page: Page,
    run: RunFiles,
    data: DataBundle | None,
    normalizer: Normalizer | None,
    note: str = "",
    augment: list[str] | None = None,
) -> None:
    section = page.section("Data", "data")
    info = run.summary.get("data", {})
    section.key_values(
        {
            "dataset": info.get("name", run.config.get("data")),
            "image shape (C, H, W)": info.get("shape"),
            "classes": len(info.get("classes", [])) or None,
        }
    )
    if data is None:
        section.note(note or "The data could not be loaded; counts per class and sample grids are skipped.")
        return
    splits = {"train": data.train, "val": data.val, "test": data.test}
    counts = {
        name: torch.bincount(split.labels, minlength=data.num_classes).tolist()
        for name, split in splits.items()
        if split is not None
    }
    section.heading("Images per class")
    section.table(["class", *counts], [[name, *[c[i] for c in counts.values()]] for i, name in enumerate(data.classes)])
    if data.num_classes <= 40:
        section.image(
            plots.bar_plot(
                data.classes, {k: [float(x) for x in v] for k, v in counts.items()}, "images per class", "images"
            ),
            "images per class",
        )
    if data.skipped:
        section.note(f"{len(data.skipped)} unreadable file(s) skipped, e.g. {data.skipped[0]}")
    from ..data.samples import per_class_indices, split_images

    shown_classes = list(range(min(data.num_classes, 10)))
    per_class = per_class_indices(data.train.labels, data.num_classes, 8)
    indices = [i for c in shown_classes for i in per_class[c]]
    columns = max(len(per_class[c]) for c in shown_classes)
    if not indices or any(len(per_class[c]) != columns for c in shown_classes):
        indices = list(range(min(len(data.train), 64)))
        row_labels = None
        columns = 8
    else:
        row_labels = [data.classes[c] for c in shown_classes]
    images = split_images(data.train, indices)
    section.heading("Training samples")
    section.image(
        plots.image_grid(plots.to_display(images), columns=columns, row_labels=row_labels, tile_inches=0.7),
        "training samples",
        "One row per class"
        + (f" (first {len(shown_classes)} classes)" if data.num_classes > len(shown_classes) else "")
        + ".",
    )
    augmenter = parse_augment(augment if augment is not None else run.config.get("augment"))
    if augmenter.needs_fit and normalizer is not None:  # colour ops and fancy PCA work from training statistics
        augmenter.fit(data.train.images if data.train.images is not None else images, normalizer)
    section.heading("Augmented samples")
    if not augmenter.ops or normalizer is None:
        section.note(
            "No augmentation configured." if not augmenter.ops else "No normalizer: augmented samples skipped."
        )
        return
    generator = torch.Generator().manual_seed(int(run.config.get("seed", 0)))
    augmented = augmenter(normalizer(images), generator)
    section.image(
        plots.image_grid(denormalize(augmented, normalizer), columns=columns, row_labels=row_labels, tile_inches=0.7),
        "augmented samples",
        f"The same images through the training augmentation: {', '.join(augmenter.specs)}.",
    )


def denormalize(x: torch.Tensor, normalizer: Normalizer) -> Any:
    """Normalized (N, C, H, W) -> display array (N, H, W, C) in [0, 1]."""
    mean = torch.tensor(normalizer.mean).view(1, -1, 1, 1)
    std = torch.tensor(normalizer.std).view(1, -1, 1, 1)
    return plots.to_display((x.detach().cpu().float() * std + mean).clamp(0, 1))


def curves_section(page: Page, run: RunFiles) -> None:
    section = page.section("Training curves", "curves")
    iters, epochs = run.kind("iter"), run.kind("epoch")
    if not iters and not epochs:
        section.note("metrics.jsonl has no rows yet.")
        return
    if iters:
        steps = [r["step"] for r in iters]
        losses = [r["loss"] for r in iters]
        finite = [(s, v) for s, v in zip(steps, losses) if isinstance(v, (int, float)) and math.isfinite(v)]
        xs, ys = [s for s, _ in finite], [v for _, v in finite]
        section.image(
            plots.line_plot(
                {"raw": (xs, ys), "smoothed": (xs, plots.smooth(ys))},
                "training loss per iteration",
                "iteration",
                "loss",
                faint=("raw",),
            ),
            "training loss per iteration",
            "Raw mini-batch loss (faint) and its bias-corrected moving average.",
        )
    if epochs:
        ep = [r["epoch"] for r in epochs]
        for metric, title in (("loss", "loss per epoch"), ("acc", "accuracy per epoch")):
            series = {
                f"{split} {metric}": (ep, [r.get(f"{split}_{metric}") for r in epochs])
                for split in ("train", "val")
                if all(f"{split}_{metric}" in r for r in epochs)
            }
            if series:
                section.image(plots.line_plot(series, title, "epoch", metric), title)
    lr_rows = iters or epochs
    if lr_rows and all("lr" in r for r in lr_rows):
        x_key = "step" if iters else "epoch"
        section.image(
            plots.line_plot(
                {"lr": ([r[x_key] for r in lr_rows], [r["lr"] for r in lr_rows])},
                "learning rate",
                "iteration" if iters else "epoch",
                "lr",
            ),
            "learning rate",
        )
    if epochs:
        section.heading("Per epoch")
        keys = [k for k in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "time") if k in epochs[0]]
        section.table(keys, [[r.get(k) for k in keys] for r in epochs])


def coach_sections(page: Page, run: RunFiles) -> None:
    """`convcoach check` results (check.json) and the diagnosis in summary.json, when present."""
    if run.check is not None:
        section = page.section("Coach checks", "checks")
        check = run.check
        records = check.get("results", check.get("checks")) if isinstance(check, dict) else None
        if isinstance(records, list) and all(isinstance(r, dict) for r in records):
            if "status" in check:
                section.key_values(
                    {"overall": check["status"], **check.get("counts", {}), "seconds": check.get("seconds")}
                )
            columns = [c for c in ("name", "status", "message", "fix", "seconds") if any(c in r for r in records)]
            section.table(
                ["check", *columns[1:]] if columns and columns[0] == "name" else columns,
                [[r.get(c) for c in columns] for r in records],
                status_column=columns.index("status") if "status" in columns else None,
            )
        else:
            section.value(check)
    if "diagnosis" in run.summary:
        section = page.section("Diagnosis", "diagnosis")
        diagnosis = run.summary["diagnosis"]
        if isinstance(diagnosis, dict) and isinstance(diagnosis.get("findings"), list):  # coach/diagnosis.py's Verdict
            section.key_values({"verdict": diagnosis.get("verdict"), "healthy": diagnosis.get("healthy")})
            findings = diagnosis["findings"]
            if findings:
                section.table(
                    ["severity", "finding", "evidence", "try"],
                    [
                        [f.get("severity"), f.get("title"), f.get("evidence"), "; ".join(f.get("fixes", []))]
                        for f in findings
                    ],
                    status_column=0,
                )
            if diagnosis.get("facts"):
                section.heading("Measured")
                section.key_values(diagnosis["facts"], columns=2)
        else:
            section.value(diagnosis)


SKIP_KEYS = {"kind", "step", "epoch", "layer", "name", "time", "monitor"}


def monitor_series(rows: list[dict[str, Any]]) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """metric -> layer -> (steps, values) from 'monitor' rows: coach/monitors.py's {monitor, layers: {layer: {key: v}}},
    or flat ({layer, metric: v}) or nested ({metric: {layer: v}}) rows."""
    series: dict[str, dict[str, tuple[list[float], list[float]]]] = defaultdict(dict)

    def add(metric: str, layer: str, step: float, value: Any) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            xs, ys = series[metric].setdefault(layer, ([], []))
            xs.append(step)
            ys.append(float(value))

    for index, row in enumerate(rows):
        step = row.get("step", row.get("epoch", index))
        layer = str(row.get("layer", row.get("name", "")))
        if isinstance(row.get("layers"), dict):
            for name, values in row["layers"].items():
                for key, value in values.items() if isinstance(values, dict) else []:
                    add(f"{row.get('monitor', '')} {key}".strip(), str(name), step, value)
            continue
        for key, value in row.items():
            if key in SKIP_KEYS:
                continue
            if isinstance(value, dict):
                for sub, inner in value.items():
                    add(key, str(sub), step, inner)
            else:
                add(key, layer or key, step, value)
    return dict(series)


# coach/instruments.py's monitors: drawn on their own, with how to read them (their other keys are the evidence)
INSTRUMENT_MONITORS = ("step_size", "noise")
INSTRUMENTS = {
    "step_size alpha": (
        "alpha: where each step lands on the loss along its own direction: -1 barely moved, 0 on the minimum, "
        "1 at the same height beyond it, > 1 uphill (steps overshoot: lower the LR)."
    ),
    "noise noise_scale": (
        "gradient-noise scale B_simple = tr(Sigma)/|G|^2: near or above the batch size, a larger batch would "
        "still cut the steps needed; far below it, a larger batch mostly costs compute."
    ),
}
HISTOGRAM_LAYERS = 6


def monitor_section(page: Page, run: RunFiles) -> None:
    rows = run.kind("monitor")
    if not rows:
        return
    section = page.section("Activation and gradient statistics", "monitors")
    section.note(
        f"{len(rows)} monitor rows from metrics.jsonl: one line per layer "
        "(with fewer than 3 samples, one bar per layer)."
    )
    series = monitor_series(rows)
    generic = {metric: layers for metric, layers in series.items() if metric.split(" ")[0] not in INSTRUMENT_MONITORS}
    for metric, layers in list(generic.items())[:12]:
        if max(len(xs) for xs, _ in layers.values()) < 3:  # too few samples for a curve: the last value per layer
            names = list(layers)[:40]
            section.image(
                plots.bar_plot(names, {"last sample": [layers[n][1][-1] for n in names]}, metric, metric), metric
            )
            continue
        shown = dict(list(layers.items())[:12])
        log_y = any(word in metric for word in ("ratio", "norm", "grad", "update"))
        section.image(plots.line_plot(shown, metric, "iteration", metric, log_y=log_y), metric)
        if len(layers) > len(shown):
            section.note(f"{metric}: first {len(shown)} of {len(layers)} layers shown.")
    _instrument_plots(section, series)
    _histogram_plot(section, [row for row in rows if isinstance(row.get("hist"), dict)])


def _instrument_plots(section: Section, series: dict[str, dict[str, tuple[list[float], list[float]]]]) -> None:
    """alpha with its 0 and 1 marks, the noise scale against the batch size; one line each on reading them."""
    for metric, reading in INSTRUMENTS.items():
        if metric == "noise noise_scale" and metric not in series and "noise batch" in series:
            count = len(series["noise batch"]["model"][0])
            section.note(
                f"gradient-noise scale: no positive estimate in {count} sample(s): the gradient's noise was below "
                "what one half batch resolves (the noise monitor's trace and grad_sq rows hold the estimates)."
            )
        if metric not in series:
            continue
        xs, ys = series[metric]["model"]
        ends = [min(xs), max(xs)]
        if metric == "step_size alpha":
            marks = {"0: the minimum": (ends, [0.0, 0.0]), "1: overshoot": (ends, [1.0, 1.0])}
            skipped = sum(
                len(series.get(f"step_size {k}", {}).get("model", ([], []))[0]) for k in ("concave", "uphill")
            )
            if skipped:
                reading += f" {skipped} sample(s) had no minimum ahead (concave or uphill): no alpha."
        else:
            marks = {"batch size": series["noise batch"]["model"]} if "noise batch" in series else {}
        section.note(reading)
        shown = {metric.split(" ", 1)[1]: (xs, ys), **marks}
        section.image(
            plots.line_plot(shown, metric, "iteration", metric, log_y=metric != "step_size alpha", faint=list(marks)),
            metric,
        )


def _histogram_plot(section: Section, rows: list[dict[str, Any]]) -> None:
    """The activations' histograms over time (fastai's colorful dimension) for the first, middle and last layers."""
    if not rows:
        return
    per_layer: dict[str, tuple[list[float], list[list[float]]]] = {}
    for row in rows:
        for name, counts in row["hist"].get("layers", {}).items():
            if isinstance(counts, list) and len(counts) == row["hist"].get("bins"):
                steps, values = per_layer.setdefault(str(name), ([], []))
                steps.append(row.get("step", len(steps)))
                values.append(counts)
    names = list(per_layer)
    if not names:
        return
    picked = sorted({round(i * (len(names) - 1) / (HISTOGRAM_LAYERS - 1)) for i in range(HISTOGRAM_LAYERS)})
    layers = {names[i]: (per_layer[names[i]][0], np.asarray(per_layer[names[i]][1], dtype=float)) for i in picked}
    section.note(
        "Activation histograms over time (fastai's 'colorful dimension'): per layer, x the iteration, y the output "
        "value (asinh scale), colour the log share of outputs in each bin. A bright band at 0 that takes over: units "
        f"dying; mass at the top or bottom edge: activations growing. {len(layers)} of {len(names)} layers shown."
    )
    section.image(
        plots.histograms_over_time(layers, float(rows[-1]["hist"]["limit"])), "activation histograms over time"
    )
