"""The report's tuning section: the study a run was a trial of, its trials table and scatter plots."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from ..config import config_fields
from ..render import figures as plots
from ..render.html import Page
from .run_files import RunFiles, read_json


def tuning_section(page: Page, run: RunFiles) -> None:
    """The study a run belongs to (trials.csv and tune.json here, one or two levels up: TUNE/trials/TRIAL)
    and the summary's tuning entries."""
    folder = next(
        (d for d in (run.path, run.path.parent, run.path.parent.parent) if (d / "trials.csv").is_file()), None
    )
    entries = {k: run.summary[k] for k in ("tune", "tuning", "trial", "study") if k in run.summary}
    if folder is None and not entries:
        return
    section = page.section("Tuning results", "tuning")
    for key, value in entries.items():
        section.heading(key)
        section.value(value)
    if folder is None:
        return
    tune = read_json(folder / "tune.json") or {}
    with open(folder / "trials.csv", newline="") as handle:
        trials = list(csv.DictReader(handle))
    section.note(f"{len(trials)} trials of the study in {folder}")
    if tune.get("best"):
        section.heading("Best trial")
        best = tune["best"]
        section.key_values(
            {
                "stage": best.get("stage"),
                "trial": best.get("trial"),
                "val_acc": best.get("val_acc"),
                **(best.get("params") or {}),
            }
        )
    for warning in tune.get("warnings", []):
        section.note(f"warning: {warning}")
    if tune.get("at_chance"):
        section.note(tune["at_chance"])
    score = next((k for k in ("val_acc", "value", "best_val_acc") if trials and k in trials[0]), None)
    if score:
        trials.sort(key=lambda t: -_number(t.get(score), -math.inf))
    if trials:
        headers = [h for h in trials[0] if h not in ("run_dir",)]
        section.heading("Trials, best first" + (f" (first 25 of {len(trials)})" if len(trials) > 25 else ""))
        section.table(headers, [[_number(t.get(h), t.get(h)) for h in headers] for t in trials[:25]])
    # tune.json names its plots as written (relative to where `tune` ran): look beside trials.csv too
    found = (
        next(
            (c for c in (Path(p), folder / p, folder / "plots" / Path(p).name, folder / Path(p).name) if c.is_file()),
            None,
        )
        for p in tune.get("plots", [])
    )
    pictures = [p for p in found if p is not None and p.suffix == ".png"]
    if pictures:
        for picture in pictures[:12]:
            section.image(picture.read_bytes(), picture.stem, picture.name)
    elif score and trials:
        hyper = [h for h in trials[0] if h in config_fields()]
        for name in hyper[:8]:
            pairs = [(_number(t.get(name), None), _number(t.get(score), None)) for t in trials]
            pairs = [(x, y) for x, y in pairs if isinstance(x, float) and isinstance(y, float)]
            if len(pairs) >= 2:
                xs, ys = zip(*pairs)
                spread = max(xs) / min(xs) if min(xs) > 0 else 0
                section.image(
                    plots.scatter_plot(xs, ys, f"{score} vs {name}", name, score, log_x=spread > 30),
                    f"{score} against {name}",
                )
    best_yaml = folder / "best.yaml"
    if best_yaml.is_file():
        section.heading("best.yaml (convcoach train --config best.yaml)")
        section.pre(best_yaml.read_text())


def _number(value: Any, default: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default
