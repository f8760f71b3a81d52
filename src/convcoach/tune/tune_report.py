"""What a search leaves behind: the notes' trials table, trials.csv, best.yaml, scatter plots and edge warnings."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import TrainConfig, save_yaml
from .space import Param, Space, apply_values

EDGE_FRACTION = 0.1  # a best value in the outer 10% of its (log) range sits "at the edge"


@dataclass
class TrialRecord:
    """One finished (or running) trial as the reports need it."""

    stage: int
    number: int
    outcome: str  # completed | pruned | diverged | failed | killed (its process died; rerun) | running
    val_acc: float | None  # best validation accuracy (pruned/diverged: the last one reported)
    params: dict[str, Any]  # sampled values (numbers for template keys)
    config_values: dict[str, Any] = field(default_factory=dict)  # the values as config keys take them
    epochs_run: int = 0
    epochs: int = 0
    steps: int = 0
    planned_steps: int = 0
    seconds: float = 0.0
    run_dir: str = ""
    message: str = ""
    first_loss: float | None = None  # mean of the first few iteration losses
    last_loss: float | None = None  # mean of the last few (None: NaN/inf, the run diverged)
    train_acc: float | None = None  # the last epoch's training accuracy


def record_from_trial(trial: Any, stage: int, epochs: int, rerun_as: int | None = None) -> TrialRecord | None:
    """An Optuna FrozenTrial -> TrialRecord; None for surplus trials (a race between processes) and queued ones.
    `rerun_as`: the number of the trial that reran this one after its process died."""
    attrs = trial.user_attrs
    state = trial.state.name.lower()
    if attrs.get("outcome") == "surplus" or state == "waiting":
        return None
    outcome = attrs.get("outcome") or {"complete": "completed", "pruned": "pruned", "fail": "failed"}.get(state, state)
    if rerun_as is not None and state == "fail":
        outcome, attrs = "killed", {**attrs, "message": f"its process died; rerun as trial {rerun_as}"}
    value = trial.value if state in ("complete", "pruned") else None
    return TrialRecord(
        stage=stage,
        number=trial.number,
        outcome=outcome,
        val_acc=value,
        params=dict(trial.params),
        config_values=dict(attrs.get("config_values", {})),
        epochs_run=int(attrs.get("epochs_run", 0)),
        epochs=epochs,
        steps=int(attrs.get("steps", 0)),
        planned_steps=int(attrs.get("planned_steps", 0)),
        seconds=float(attrs.get("seconds", 0.0)),
        run_dir=str(attrs.get("run_dir", "")),
        message=str(attrs.get("message", "")),
        first_loss=attrs.get("first_loss"),
        last_loss=attrs.get("last_loss"),
        train_acc=attrs.get("train_acc"),
    )


# ----- the table -----
def format_value(param: Param | None, value: Any) -> str:
    """5.34e-04 for log ranges (as in the notes), 3 significant digits for linear ones, choices as they are."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return str(value)
    if param is not None and param.is_range and param.integer:
        return param.template.replace("{}", str(int(value))) if param.template else str(int(value))
    if isinstance(value, float):
        text = f"{value:.2e}" if param is not None and param.log else f"{value:.3g}"
        return param.template.replace("{}", text) if param is not None and param.template else text
    return str(value)


def format_line(record: TrialRecord, space: Space, total: int) -> str:
    """'val_acc: 0.527, lr: 5.34e-04, weight_decay: 4.10e-01 (3 / 100)', plus why a trial ended early."""
    acc = f"{record.val_acc:.3f}" if record.val_acc is not None else "-----"
    params = ", ".join(f"{key}: {format_value(space.get(key), value)}" for key, value in record.params.items())
    line = f"val_acc: {acc}, {params} ({record.number + 1} / {total})"
    if record.outcome == "pruned":
        line += f"  [pruned after epoch {record.epochs_run}/{record.epochs}]"
    elif record.outcome == "diverged":
        line += f"  [diverged at step {record.steps}: stopped early]"
    elif record.outcome in ("failed", "killed"):
        line += f"  [{record.outcome}: {record.message}]"
    return line


def sort_by_accuracy(records: list[TrialRecord]) -> list[TrialRecord]:
    return sorted(records, key=lambda r: (r.val_acc is not None, r.val_acc or 0.0), reverse=True)


def trials_table(records: list[TrialRecord], space: Space, total: int) -> str:
    return "\n".join(format_line(r, space, total) for r in sort_by_accuracy(records))


def best_record(records: list[TrialRecord]) -> TrialRecord | None:
    """The completed trial with the highest validation accuracy (pruned and diverged trials never win)."""
    completed = [r for r in records if r.outcome == "completed" and r.val_acc is not None]
    return max(completed, key=lambda r: r.val_acc) if completed else None


# ----- files -----
def write_csv(records: list[TrialRecord], path: Path) -> None:
    keys = list(dict.fromkeys(k for r in records for k in r.params))
    columns = [
        "stage",
        "trial",
        "outcome",
        "val_acc",
        "epochs_run",
        "epochs",
        "steps",
        "planned_steps",
        "seconds",
        *keys,
        "run_dir",
        "message",
    ]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for r in sorted(records, key=lambda r: (r.stage, r.number)):
            writer.writerow(
                [
                    r.stage,
                    r.number,
                    r.outcome,
                    "" if r.val_acc is None else f"{r.val_acc:.6f}",
                    r.epochs_run,
                    r.epochs,
                    r.steps,
                    r.planned_steps,
                    f"{r.seconds:.2f}",
                ]
                + [r.params.get(k, "") for k in keys]
                + [r.run_dir, r.message]
            )


def best_config(base: TrainConfig, best: TrialRecord) -> TrainConfig:
    """A full config for `convcoach train --config best.yaml`: the base options plus the best trial's values."""
    return apply_values(base, best.config_values, epochs=best.epochs, out=None, resume=None, quiet=False)


def write_best_yaml(base: TrainConfig, best: TrialRecord, path: Path) -> None:
    save_yaml(best_config(base, best), path)


# ----- the notes' worry -----
def edge_warnings(space: Space, params: dict[str, Any], fraction: float = EDGE_FRACTION) -> list[str]:
    """Warn when the best value sits in the outer `fraction` of its range (or at the end of a numeric choice list)."""
    warnings = []
    for key, param in space.items():
        if key not in params or params[key] is None:
            continue
        value = params[key]
        side = None
        if param.is_range:
            axis = math.log10 if param.log else float
            position = (axis(value) - axis(param.low)) / (axis(param.high) - axis(param.low))
            side = "low" if position <= fraction else "high" if position >= 1 - fraction else None
            bounds = f"{format_value(param, param.low)}..{format_value(param, param.high)}"
        else:
            numeric = [c for c in param.choices if isinstance(c, int | float) and not isinstance(c, bool)]
            if len(numeric) >= 3 and value in numeric:
                side = "low" if value == min(numeric) else "high" if value == max(numeric) else None
            bounds = f"[{', '.join(map(str, param.choices))}]"
        if side:
            warnings.append(
                f"the best {key} ({format_value(param, value)}) sits at the {side} edge of its range {bounds}: "
                "this best cross-validation result is worrying, the optimum may lie beyond it; "
                f"widen the range on the {side} side and search again"
            )
    return warnings


# ----- a study where nothing learned -----
CHANCE_SE = 2.0  # a best validation accuracy within this many binomial standard errors of chance is "at chance"
FLAT = 0.05  # a training loss within 5% of its start stayed flat


def _trend(record: TrialRecord) -> str:
    """diverged | rose | flat | fell | unknown, from the outcome and the first and last iteration losses."""
    if record.outcome == "diverged" or (record.first_loss is not None and record.last_loss is None):
        return "diverged"
    if record.first_loss is None or record.last_loss is None or record.first_loss <= 0:
        return "unknown"
    change = (record.last_loss - record.first_loss) / record.first_loss
    return "rose" if change > FLAT else "fell" if change < -FLAT else "flat"


def _lrs(records: list[TrialRecord]) -> list[float]:
    values = [r.config_values.get("lr", r.params.get("lr")) for r in records]
    return sorted(v for v in values if isinstance(v, int | float) and not isinstance(v, bool))


def _why(ended: list[TrialRecord]) -> str:
    """What the trials' own losses say about why none learned."""
    trends = {r.number: _trend(r) for r in ended}
    up = [r for r in ended if trends[r.number] in ("diverged", "rose")]
    flat = [r for r in ended if trends[r.number] == "flat"]
    fell = [r for r in ended if trends[r.number] == "fell"]
    n = len(ended)
    if len(up) == n:
        diverged = sum(trends[r.number] == "diverged" for r in up)
        what = "diverged" if diverged == n else f"diverged ({diverged}) or rose ({n - diverged})"
        return f"every trial's training loss {what}: the search space's learning rates are likely all too high"
    if len(flat) == n:
        return (
            f"every trial's training loss stayed flat (within {FLAT:.0%} of its start): the search space's "
            "learning rates are likely all too low, or the model learns at none (check its init and inputs)"
        )
    if up and flat and not fell:
        high, low = _lrs(up), _lrs(flat)
        where = ""
        if high and low and max(low) < min(high):
            where = f" (lr >= {min(high):.2e} diverged or rose, lr <= {max(low):.2e} stayed flat)"
        return (
            f"the training loss diverged or rose in {len(up)} and stayed flat in {len(flat)}{where}: the learning "
            "rates are likely all too high or too low"
        )
    if fell and len(fell) == n:
        accuracy = max((r.train_acc for r in fell if r.train_acc is not None), default=None)
        reached = f" (training accuracy up to {accuracy:.1%})" if accuracy is not None else ""
        return (
            f"every trial lowered its training loss{reached} yet none beat chance on validation: the trials may be "
            "too short, or the validation images may not match the training ones"
        )
    return "the search space's learning rates are likely all too high or too low"


def at_chance_line(
    records: list[TrialRecord], classes: int, val_images: int, majority: float | None = None
) -> str | None:
    """One line when every trial that ended (completed, pruned or diverged) is within noise of chance on
    validation: how many, the chance level, and why none learned as the trials' losses show it; else None.

    Chance is 1/classes, or the majority class's share of validation where that is higher (a model that
    always answers it); noise is CHANCE_SE binomial standard errors on `val_images` images."""
    ended = [r for r in records if r.outcome == "diverged" or (r.outcome != "failed" and r.val_acc is not None)]
    if not ended or classes < 2:
        return None
    chance = 1 / classes
    level = max(chance, majority or 0.0)
    bound = level + CHANCE_SE * math.sqrt(level * (1 - level) / max(val_images, 1))
    if any(r.val_acc is not None and r.val_acc > bound for r in ended):
        return None
    shown = f"{chance:.1%} for {classes} classes"
    if level > chance:
        shown += f", {level:.1%} by always answering the majority class"
    return (
        f"all {len(ended)} trials ended at chance ({shown}): no trial learned; {_why(ended)} "
        "- run convcoach check on one trial's options"
    )


# ----- plots -----
def scatter_plots(records: list[TrialRecord], space: Space, out_dir: Path) -> list[Path]:
    """One PNG per key: validation accuracy against the key (log axis for log ranges), best starred."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    best = best_record(records)
    stages = sorted({r.stage for r in records})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    paths = []
    for key, param in space.items():
        fig, ax = plt.subplots(figsize=(5.5, 4))
        positions = _positions(param, records, key)
        for index, stage in enumerate(stages):
            for outcome, marker, fill in (("completed", "o", True), ("pruned", "o", False)):
                chosen = [
                    r
                    for r in records
                    if r.stage == stage and r.outcome == outcome and r.val_acc is not None and key in r.params
                ]
                if chosen:
                    color = colors[index % len(colors)]
                    ax.scatter(
                        [positions(r.params[key]) for r in chosen],
                        [r.val_acc for r in chosen],
                        marker=marker,
                        facecolors=color if fill else "none",
                        edgecolors=color,
                        label=f"stage {stage} {outcome}",
                        alpha=0.8,
                    )
        diverged = [r for r in records if r.outcome == "diverged" and key in r.params]
        if diverged:
            ax.scatter(
                [positions(r.params[key]) for r in diverged],
                [0.0] * len(diverged),
                marker="x",
                color="red",
                label="diverged",
            )
        if best is not None and key in best.params:
            ax.scatter(
                [positions(best.params[key])],
                [best.val_acc],
                marker="*",
                s=250,
                color="gold",
                edgecolors="black",
                zorder=5,
                label="best",
            )
        if param.is_range:
            if param.log:
                ax.set_xscale("log")
            for edge in (param.low, param.high):
                ax.axvline(edge, color="gray", linestyle=":", linewidth=1)
        else:
            ax.set_xticks(range(len(param.choices)), [str(c) for c in param.choices])
        ax.set_xlabel(key + (" (log scale)" if param.log else ""))
        ax.set_ylabel("validation accuracy")
        ax.set_title(f"val accuracy vs {key}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best", markerscale=0.6)
        fig.tight_layout()
        path = out_dir / f"val_acc_vs_{key}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def _positions(param: Param, records: list[TrialRecord], key: str):
    """x positions: the value for ranges; the choice index for choice lists."""
    if param.is_range:
        return lambda value: value
    index = {repr(c): i for i, c in enumerate(param.choices)}
    for r in records:  # a later stage may have fewer choices; every choice seen keeps a slot
        if key in r.params and repr(r.params[key]) not in index:
            index[repr(r.params[key])] = len(index)
    return lambda value: index[repr(value)]
