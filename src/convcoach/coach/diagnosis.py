"""Diagnosis after training: numbers measured from the curves and monitors (Facts), read by the
rules in rules.py into a short verdict with evidence and fixes; for a finished run or a run directory."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import ConfigError
from ..train.callbacks import Callback, MetricsLogger, Priority

if TYPE_CHECKING:
    from ..train.loop import Trainer


@dataclass
class RunRecord:
    """What a run left behind: iteration and epoch rows, monitor rows by monitor, and its summary."""

    iterations: list[dict[str, Any]]
    epochs: list[dict[str, Any]]
    monitors: dict[str, list[dict[str, Any]]]
    summary: dict[str, Any]

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]], summary: dict[str, Any] | None = None) -> RunRecord:
        monitors: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if row.get("kind") == "monitor":
                monitors.setdefault(row["monitor"], []).append(row)
        return cls(
            [r for r in rows if r.get("kind") == "iter"],
            [r for r in rows if r.get("kind") == "epoch"],
            monitors,
            summary or {},
        )

    @classmethod
    def from_run_dir(cls, run_dir: str | Path) -> RunRecord:
        run_dir = Path(run_dir)
        metrics = run_dir / "metrics.jsonl"
        if not metrics.is_file():
            raise ConfigError(f"{run_dir}: no metrics.jsonl (expected a training run directory)")
        from ..report.run_files import read_object

        return cls.from_rows(read_rows(metrics), read_object(run_dir / "summary.json"))


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise ConfigError(f"{path}:{number}: not a JSON line") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{number}: not a metrics row (a JSON object)")
            rows.append(row)
    return rows


@dataclass
class Facts:
    """The numbers the rules read; None where the run did not record what they need."""

    iterations: int = 0
    classes: int | None = None
    chance: float | None = None
    val_count: int = 0
    diverged: bool = False
    stop_message: str | None = None
    loss_start: float | None = None
    loss_end: float | None = None
    loss_drop: float | None = None  # (start - end) / start: first vs last epoch's mean training loss (else iterations)
    late_drop: float | None = None  # over the last third, relative to the start (plateau)
    loss_noise: float | None = None  # late losses' spread around their running mean, / their mean
    lr_held: bool = True  # the LR at the end is at least half its peak (no decay yet)
    train_acc: float | None = None
    mode_train_acc: float | None = None  # the final model on the same training images in train mode...
    mode_eval_acc: float | None = None  # ...and in eval mode (BatchNorm's running statistics, no dropout)
    val_acc: float | None = None
    best_val_acc: float | None = None
    gap: float | None = None  # train - val accuracy at the end (eval mode on training images when measured)
    gap_growth: float | None = None  # gap at the end - smallest gap (or 0)
    gap_min_epoch: int | None = None
    val_loss_rise: float | None = None  # (last - min) / min of the validation loss
    val_loss_min_epoch: int | None = None
    val_loss_stalled: bool | None = None  # its minimum lies before the last epoch
    input_mean: float | None = None
    input_std: float | None = None
    dead_max: float | None = None
    dead_layer: str | None = None
    act_shrink: float | None = None  # last / first activation std, first sample, live layers
    act_first_std: float | None = None
    act_last_std: float | None = None
    saturated_max: float | None = None
    update_ratio: float | None = None  # median over samples and layers
    grad_ratio: float | None = None  # first-layer / last-layer gradient norm, median over samples
    grad_nonfinite: bool = False
    test_acc: float | None = None  # the best snapshot on the test split (summary.json)
    test_count: int = 0
    test_per_class: dict[str, float] | None = None  # per-class test accuracy (recall)


def measure(record: RunRecord) -> Facts:
    facts = Facts()
    summary = record.summary
    classes = (summary.get("data") or {}).get("classes")
    if classes:
        facts.classes, facts.chance = len(classes), 1 / len(classes)
    facts.val_count = (summary.get("data") or {}).get("val", 0) or 0
    facts.diverged = summary.get("stop_reason") == "diverged"
    by_mode = summary.get("train_accuracy_by_mode") or {}
    facts.mode_train_acc, facts.mode_eval_acc = by_mode.get("train"), by_mode.get("eval")
    facts.stop_message = summary.get("stop_message")
    facts.test_acc = summary.get("test_accuracy")
    facts.test_count = (summary.get("data") or {}).get("test", 0) or 0
    facts.test_per_class = summary.get("test_per_class_accuracy")
    _curve_facts(facts, record.iterations)
    _epoch_facts(facts, record.epochs)
    if facts.mode_eval_acc is not None and facts.val_acc is not None:
        # the generalization gap proper: the final model in eval mode on training vs validation images
        # (the running training accuracy also carries augmentation, dropout and BatchNorm's batch statistics)
        facts.gap = facts.mode_eval_acc - facts.val_acc
    train_losses = [
        e["train_loss"] for e in record.epochs if e.get("train_loss") is not None and math.isfinite(e["train_loss"])
    ]
    if len(train_losses) >= 2 and train_losses[0] > 0:
        # epoch means average out the batch-to-batch noise that a few iterations cannot
        facts.loss_drop = (train_losses[0] - train_losses[-1]) / train_losses[0]
    _monitor_facts(facts, record.monitors)
    return facts


def _curve_facts(facts: Facts, iterations: list[dict[str, Any]]) -> None:
    losses = [float(r["loss"]) for r in iterations]
    facts.iterations = len(losses)
    if not losses:
        return
    if not all(math.isfinite(v) for v in losses):
        facts.diverged = True
    finite = [v for v in losses if math.isfinite(v)]
    if len(finite) < 2:
        return
    head, tail = max(1, min(5, len(finite) // 10)), max(1, min(20, len(finite) // 5))
    facts.loss_start, facts.loss_end = statistics.fmean(finite[:head]), statistics.fmean(finite[-tail:])
    facts.loss_drop = (facts.loss_start - facts.loss_end) / facts.loss_start if facts.loss_start else None
    third = finite[2 * len(finite) // 3 :]
    if len(third) >= 6 and facts.loss_start:
        facts.late_drop = (
            statistics.fmean(third[: len(third) // 3]) - statistics.fmean(third[-(len(third) // 3) :])
        ) / facts.loss_start
        window = 5
        running = [statistics.fmean(third[max(0, i - window) : i + 1]) for i in range(len(third))]
        residual = [v - m for v, m in zip(third, running)]
        facts.loss_noise = statistics.pstdev(residual) / max(statistics.fmean(third), 1e-12)
    lrs = [float(r["lr"]) for r in iterations if "lr" in r]
    facts.lr_held = bool(lrs) and lrs[-1] >= 0.5 * max(lrs)


def _epoch_facts(facts: Facts, epochs: list[dict[str, Any]]) -> None:
    if not epochs:
        return
    last = epochs[-1]
    facts.train_acc = last.get("train_acc")
    facts.val_acc = last.get("val_acc")
    vals = [e["val_acc"] for e in epochs if e.get("val_acc") is not None]
    facts.best_val_acc = max(vals) if vals else None
    gaps = [
        e["train_acc"] - e["val_acc"] for e in epochs if e.get("val_acc") is not None and e.get("train_acc") is not None
    ]
    if gaps:
        # a negative gap (validation above training, e.g. under augmentation) counts as no gap
        facts.gap, facts.gap_growth = gaps[-1], gaps[-1] - max(min(gaps), 0.0)
        facts.gap_min_epoch = gaps.index(min(gaps)) + 1
    val_losses = [e["val_loss"] for e in epochs if e.get("val_loss") is not None and math.isfinite(e["val_loss"])]
    if len(val_losses) >= 3:
        low = min(val_losses)
        facts.val_loss_min_epoch = val_losses.index(low) + 1
        facts.val_loss_stalled = facts.val_loss_min_epoch < len(val_losses)
        facts.val_loss_rise = (val_losses[-1] - low) / max(low, 1e-12)


def _monitor_facts(facts: Facts, monitors: dict[str, list[dict[str, Any]]]) -> None:
    activations = monitors.get("activations", [])
    if activations:
        inputs = [row["layers"]["input"] for row in activations if "input" in row["layers"]]
        if inputs:
            facts.input_mean = statistics.fmean(i["mean"] for i in inputs)
            facts.input_std = statistics.fmean(i["std"] for i in inputs)
        last = {k: v for k, v in activations[-1]["layers"].items() if k != "input"}
        dead = {k: v["dead"] for k, v in last.items() if "dead" in v}
        if dead:
            worst = max(dead, key=lambda k: dead[k])
            facts.dead_max = dead[worst]
            facts.dead_layer = f"activation layer {list(last).index(worst) + 1} of {len(last)} ('{worst}')"
        saturated = [v["saturated"] for v in last.values() if "saturated" in v]
        facts.saturated_max = max(saturated) if saturated else None
        first = [v for k, v in activations[0]["layers"].items() if k != "input" and v.get("dead", 0.0) < 0.5]
        if len(first) >= 3 and first[0]["std"] > 0:
            facts.act_first_std, facts.act_last_std = first[0]["std"], first[-1]["std"]
            facts.act_shrink = first[-1]["std"] / first[0]["std"]
    updates = [v["update_ratio"] for row in monitors.get("updates", []) for v in row["layers"].values()]
    finite_updates = [u for u in updates if math.isfinite(u)]
    facts.update_ratio = statistics.median(finite_updates) if finite_updates else None
    ratios = []
    for row in monitors.get("gradients", []):
        norms = [v["grad_norm"] for v in row["layers"].values()]
        if not all(math.isfinite(n) for n in norms):
            facts.grad_nonfinite = True
        elif len(norms) >= 2 and norms[-1] > 0:
            ratios.append(norms[0] / norms[-1])
    facts.grad_ratio = statistics.median(ratios) if ratios else None


@dataclass
class Finding:
    cause: str  # a rule's name, e.g. "overfitting"
    severity: str  # fail | warn | info
    title: str
    evidence: str
    fixes: list[str] = field(default_factory=list)


SEVERITY = {"fail": 0, "warn": 1, "info": 2}


@dataclass
class Verdict:
    findings: list[Finding]
    facts: Facts

    @property
    def causes(self) -> list[str]:
        return [f.cause for f in self.findings]

    @property
    def healthy(self) -> bool:
        return not any(f.severity in ("fail", "warn") for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.findings[0].cause if self.findings else "healthy",
            "healthy": self.healthy,
            "causes": self.causes,
            "findings": [asdict(f) for f in self.findings],
            "facts": {k: v for k, v in asdict(self.facts).items() if v is not None},
        }


def diagnose(record: RunRecord) -> Verdict:
    """Run every registered rule (in their registered order of cause before symptom); fails first."""
    from .rules import RULES

    facts = measure(record)
    findings: list[Finding] = []
    for name in RULES.sequence():
        if name in RULES.curve and any(f.cause == "too_short" for f in findings):
            continue
        finding = RULES.get(name)(facts, findings)
        if finding is not None:
            findings.append(finding)
    findings.sort(key=lambda f: SEVERITY[f.severity])  # stable: rule order within a severity
    return Verdict(findings, facts)


def diagnose_run(run_dir: str | Path) -> Verdict:
    """The diagnosis of a run directory (metrics.jsonl and summary.json)."""
    return diagnose(RunRecord.from_run_dir(run_dir))


def format_diagnosis(diagnosis: dict[str, Any]) -> str:
    """Plain-text verdict: one line per finding, then what to try."""
    if not diagnosis["findings"]:
        return "Diagnosis: healthy - no problem found in the curves or monitors"
    lines = [f"Diagnosis: {diagnosis['verdict'].replace('_', ' ')}"]
    for finding in diagnosis["findings"]:
        lines.append(f"  [{finding['severity']}] {finding['title']}: {finding['evidence']}")
        if finding["fixes"]:
            lines.append(f"         try: {'; '.join(finding['fixes'])}")
    return "\n".join(lines)


class Diagnosis(Callback):
    """At the end of training, diagnoses the run from its metrics log into summary.json["diagnosis"]."""

    order = Priority.DIAGNOSIS  # after the monitors have added their summaries

    def __init__(self) -> None:
        self.by_mode: dict[str, float] | None = None

    def on_train_end(self, trainer: Trainer) -> None:
        self.by_mode = accuracy_by_mode(trainer)  # the final model, before finish() reloads best.pt

    def on_summary(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        logger = next((c for c in trainer.callbacks if isinstance(c, MetricsLogger)), None)
        rows = read_rows(logger.path) if logger is not None and logger.path.is_file() else []
        if self.by_mode is not None:
            summary["train_accuracy_by_mode"] = self.by_mode
        summary["diagnosis"] = diagnose(RunRecord.from_rows(rows, summary)).to_dict()


@torch.no_grad()
def accuracy_by_mode(trainer: Trainer, limit: int = 512) -> dict[str, float] | None:
    """Accuracy of the model on up to `limit` training images (no augmentation) in train mode (its
    buffers restored after: the forward moves BatchNorm's running statistics) and in eval mode. A
    large gap means BatchNorm's running statistics (or dropout) make evaluation differ from training."""
    from ..train.distributed import unwrap

    train = trainer.data.train
    model = unwrap(trainer.model)
    if train.images is None or not len(train):
        return None
    if trainer.dist.enabled and any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules()):
        return None  # a train-mode forward would start a collective the other ranks never join
    x = trainer.normalizer(train.images[:limit].to(trainer.device))
    y = train.labels[:limit].to(trainer.device)
    if trainer.config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    was_training = model.training
    buffers = [(buffer, buffer.clone()) for buffer in model.buffers()]
    train_mode = (model.train()(x).argmax(dim=1) == y).float().mean().item()
    for buffer, saved in buffers:
        buffer.copy_(saved)
    eval_mode = (model.eval()(x).argmax(dim=1) == y).float().mean().item()
    model.train(was_training)
    return {"train": train_mode, "eval": eval_mode}
