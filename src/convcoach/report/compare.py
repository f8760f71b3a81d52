"""`convcoach compare`: the curves of several runs overlaid on one page, with a table of their final figures
and the config keys in which they differ (BN or not, optimizers, schedules, inits side by side)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..render import figures as plots
from ..render.html import Page
from .run_files import RunFiles, load_run

FINAL_KEYS = ["test_accuracy", "best_val_acc", "test_loss", "epochs_run", "train_seconds", "parameters"]
EPOCH_KEYS = ["train_loss", "train_acc", "val_loss", "val_acc"]


def run_labels(runs: list[RunFiles]) -> list[str]:
    """Directory names, or the paths as given when two runs share a name."""
    names = [r.name for r in runs]
    return names if len(set(names)) == len(names) else [str(r.path) for r in runs]


def _setting(run: RunFiles, key: str) -> Any:
    """A config value; an unset lr shows the default the run used (summary.json)."""
    value = run.config.get(key)
    if key == "lr" and value is None and run.summary.get("lr") is not None:
        return f"{run.summary['lr']:g} (default)"
    return value


def compare_runs(run_dirs: list[str | Path], out: str | Path) -> Path:
    if len(run_dirs) < 1:
        raise ConfigError("compare needs at least one run directory")
    runs = [load_run(d) for d in run_dirs]
    labels = run_labels(runs)
    page = Page(f"convcoach compare: {len(runs)} runs", ", ".join(labels))
    table = page.section("Final figures", "final")
    final_rows = []
    for label, run in zip(labels, runs):
        last = (run.kind("epoch") or [{}])[-1]
        final_rows.append([label, *[run.summary.get(k) for k in FINAL_KEYS], *[last.get(k) for k in EPOCH_KEYS]])
    table.table(["run", *FINAL_KEYS, *[f"final {k}" for k in EPOCH_KEYS]], final_rows)
    keys = sorted({k for r in runs for k in r.config} - {"out", "resume", "quiet"})
    differing = [k for k in keys if len({repr(_setting(r, k)) for r in runs}) > 1]
    settings = page.section("Settings that differ", "differences")
    if differing:
        settings.table(["key", *labels], [[k, *[_setting(r, k) for r in runs]] for k in differing])
    else:
        settings.note("The runs have the same configuration.")
    curves = page.section("Curves", "curves")
    iteration = {
        label: ([r["step"] for r in run.kind("iter")], plots.smooth([r["loss"] for r in run.kind("iter")]))
        for label, run in zip(labels, runs)
        if run.kind("iter")
    }
    if iteration:
        curves.image(
            plots.line_plot(iteration, "training loss per iteration (smoothed)", "iteration", "loss", size=(7.0, 3.8)),
            "training loss per iteration",
        )
    for key in EPOCH_KEYS + ["lr"]:
        series = {
            label: ([r["epoch"] for r in run.kind("epoch")], [r[key] for r in run.kind("epoch")])
            for label, run in zip(labels, runs)
            if run.kind("epoch") and all(key in r for r in run.kind("epoch"))
        }
        if series:
            curves.image(plots.line_plot(series, f"{key} per epoch", "epoch", key), f"{key} per epoch")
    if not iteration and not any(run.kind("epoch") for run in runs):
        curves.note("None of the runs has metrics yet.")
    return page.write(out)
