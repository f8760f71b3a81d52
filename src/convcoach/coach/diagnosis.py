"""Diagnosis after training: numbers measured from the curves and monitors (Facts), read by the
rules in rules.py into a short verdict with evidence and fixes; for a finished run or a run directory."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..train.callbacks import Callback, MetricsLogger, Priority
from .advice import advise
from .record import RunRecord, read_checks, read_rows
from .run_facts import accuracy_by_mode, data_facts, model_facts

if TYPE_CHECKING:
    from ..train.loop import Trainer

LR_LOW = 0.01  # share of its peak under which the LR no longer moves the weights (lr_low_from)


@dataclass
class Facts:
    """The numbers the rules read; None where the run did not record what they need."""

    iterations: int = 0
    classes: int | None = None
    chance: float | None = None
    val_count: int = 0
    diverged: bool = False
    stop_message: str | None = None
    budget_epochs: int | None = None  # the epochs --time-budget planned (summary.json "time_budget")...
    budget_asked: int | None = None  # ...of the --epochs asked
    loss_start: float | None = None
    loss_first: float | None = None  # iteration 1's loss: the initial weights' (ln C for a net that guesses evenly)
    loss_end: float | None = None
    loss_drop: float | None = None  # (start - end) / start: first vs last epoch's mean training loss (else iterations)
    late_drop: float | None = None  # over the last third, relative to the start (plateau)
    loss_noise: float | None = None  # late losses' spread around their running mean, / their mean
    lr_held: bool = True  # the LR at the end is at least half its peak (no decay yet)
    lr_low_from: float | None = None  # share of the run after which the LR stays under 1% of its peak (None: never)
    clip_scale: float | None = None  # median of --clip-grad's max norm / the gradient's norm before it (<= 1)
    clip_norm: float | None = None  # median global gradient norm before clipping
    image_side: int | None = None  # the images' smaller side in pixels
    source_side: int | None = None  # their smaller side as stored, before --image-size
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
    dead_start: float | None = None  # the dead share of dead_layer at the first sample (iteration 1)
    dead_rise: float | None = None  # the largest rise of a layer's dead share from the first sample to the last
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
    test_class_counts: list[int] | None = None
    test_taken_for: dict[str, list] | None = None  # class -> [the class its test images are most taken for, share]
    val_per_class: dict[str, float] | None = None  # the best snapshot's per-class validation accuracy
    val_class_counts: list[int] | None = None
    pixel_shift: dict[str, Any] | None = None  # where test images differ from training's (run_facts.pixel_shift)
    near_copies: dict[str, Any] | None = None  # near-copies between the splits (run_facts.near_copies)
    options: dict[str, Any] = field(default_factory=dict)  # the run's options (config.yaml)
    lr_peak: float | None = None  # the configured peak LR (summary.json "lr")
    lr_reached: float | None = None  # the largest LR the run used / lr_peak (a warm-up may never end)
    loss_spikes: float | None = None  # share of iterations whose loss jumps above 1.5x the median of the 10 before
    val_loss_max: float | None = None
    val_accs: list[float] = field(default_factory=list)  # per epoch
    train_counts: list[int] | None = None  # images per class in the training split
    train_count: int = 0
    test_in_train: int | None = None  # test images byte-identical to a training or validation image
    val_in_train: int | None = None  # validation images byte-identical to a training image
    repeated_in_train: int | None = None  # training images that repeat another
    skipped_files: int = 0
    batchnorm_layers: int | None = None
    batchnorm_momentum: float | None = None
    alike: float | None = None  # smallest spread of a layer's weight rows / their norm (0: all units the same)
    alike_layer: str | None = None
    checks_flagged: list[dict[str, Any]] = field(default_factory=list)  # check.json's warn and fail rows
    alpha: float | None = None  # median of Cockpit's alpha after iteration 1 (> 1: steps overshoot, the loss rises)
    uphill: float | None = None  # share of step_size samples after iteration 1 where the step went uphill


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
    budget = summary.get("time_budget") or {}
    facts.budget_epochs, facts.budget_asked = budget.get("planned_epochs"), budget.get("asked_epochs")
    facts.test_acc = summary.get("test_accuracy")
    facts.test_count = (summary.get("data") or {}).get("test", 0) or 0
    facts.test_per_class = summary.get("test_per_class_accuracy")
    facts.test_class_counts, facts.test_taken_for = summary.get("test_class_counts"), summary.get("test_taken_for")
    facts.val_per_class, facts.val_class_counts = summary.get("val_per_class_accuracy"), summary.get("val_class_counts")
    facts.options, facts.lr_peak = record.options, summary.get("lr")
    facts.checks_flagged = [r for r in record.checks if r.get("status") in ("warn", "fail")]
    data, model = summary.get("data") or {}, summary.get("model_facts") or {}
    facts.train_count, facts.skipped_files = data.get("train", 0) or 0, data.get("skipped_files", 0) or 0
    facts.train_counts = data.get("train_class_counts")
    facts.test_in_train, facts.val_in_train = data.get("test_in_train"), data.get("val_in_train")
    facts.repeated_in_train, facts.pixel_shift = data.get("repeated_in_train"), data.get("pixel_shift")
    facts.near_copies = data.get("near_copies")
    facts.batchnorm_layers, facts.batchnorm_momentum = model.get("batchnorm_layers"), model.get("batchnorm_momentum")
    shape = data.get("shape") or []
    facts.image_side = min(shape[1:]) if len(shape) == 3 else None
    stored = data.get("source_shape") or []
    facts.source_side = min(stored[1:]) if len(stored) == 3 else None
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
    if math.isfinite(losses[0]):
        facts.loss_first = losses[0]
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
    peak = max(lrs, default=0.0)
    facts.lr_held = bool(lrs) and lrs[-1] >= 0.5 * peak
    if peak > 0:
        last_high = next(i for i in range(len(lrs) - 1, -1, -1) if lrs[i] >= LR_LOW * peak)
        if last_high + 1 < len(lrs):
            facts.lr_low_from = (last_high + 1) / len(lrs)
    if lrs and facts.lr_peak:
        facts.lr_reached = max(lrs) / facts.lr_peak
    if len(finite) >= 20:
        jumps = [v > 1.5 * statistics.median(finite[i - 10 : i]) for i, v in enumerate(finite) if i >= 10]
        facts.loss_spikes = sum(jumps) / len(jumps)


def _epoch_facts(facts: Facts, epochs: list[dict[str, Any]]) -> None:
    if not epochs:
        return
    last = epochs[-1]
    facts.train_acc = last.get("train_acc")
    facts.val_acc = last.get("val_acc")
    vals = [e["val_acc"] for e in epochs if e.get("val_acc") is not None]
    facts.best_val_acc = max(vals) if vals else None
    facts.val_accs = vals
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
    facts.val_loss_max = max(val_losses) if val_losses else None


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
        start = {k: v["dead"] for k, v in activations[0]["layers"].items() if k != "input" and "dead" in v}
        if start and dead:
            facts.dead_start = start.get(worst)
            facts.dead_rise = max(dead[k] - start.get(k, dead[k]) for k in dead)
        saturated = [v["saturated"] for v in last.values() if "saturated" in v]
        facts.saturated_max = max(saturated) if saturated else None
        first = [v for k, v in activations[0]["layers"].items() if k != "input" and v.get("dead", 0.0) < 0.5]
        if len(first) >= 3 and first[0]["std"] > 0:
            facts.act_first_std, facts.act_last_std = first[0]["std"], first[-1]["std"]
            facts.act_shrink = first[-1]["std"] / first[0]["std"]
    rows = monitors.get("updates", [])
    # a zero-initialized residual branch gets no gradient at step 1 and tiny updates for a while: left out
    still = {k for row in rows if row.get("step") == 1 for k, v in row["layers"].items() if v["update_ratio"] == 0}
    later = [row for row in rows if row.get("step", 0) > 1] or rows
    updates = [v["update_ratio"] for row in later for k, v in row["layers"].items() if k not in still]
    updates = [u for u in updates if u > 0] or updates
    alike = [(v["alike"], name) for name, v in rows[-1]["layers"].items() if "alike" in v] if rows else []
    if alike:
        facts.alike, facts.alike_layer = min(alike)
    finite_updates = [u for u in updates if math.isfinite(u)]
    facts.update_ratio = statistics.median(finite_updates) if finite_updates else None
    steps = [row["layers"].get("model", {}) for row in monitors.get("step_size", []) if row.get("step", 0) > 1]
    alphas = [v["alpha"] for v in steps if isinstance(v.get("alpha"), float) and math.isfinite(v["alpha"])]
    facts.alpha = statistics.median(alphas) if alphas else None
    facts.uphill = sum(1 for v in steps if v.get("uphill") or (v.get("alpha") or 0) > 1) / len(steps) if steps else None
    ratios = []
    for row in monitors.get("gradients", []):
        norms = [v["grad_norm"] for v in row["layers"].values()]
        if not all(math.isfinite(n) for n in norms):
            facts.grad_nonfinite = True
        elif len(norms) >= 2 and norms[-1] > 0:
            ratios.append(norms[0] / norms[-1])
    facts.grad_ratio = statistics.median(ratios) if ratios else None
    clipped = [row["clip_grad"] for row in monitors.get("gradients", []) if isinstance(row.get("clip_grad"), dict)]
    norms = [c["norm"] for c in clipped if isinstance(c.get("norm"), float) and math.isfinite(c["norm"])]
    if norms and clipped[0].get("max_norm"):
        facts.clip_norm = statistics.median(norms)
        facts.clip_scale = min(1.0, clipped[0]["max_norm"] / max(facts.clip_norm, 1e-30))


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
            # notes (info) alone leave a run healthy: the verdict is the first warning or failure
            "verdict": "healthy" if self.healthy else self.findings[0].cause,
            "healthy": self.healthy,
            "causes": self.causes,
            "findings": [asdict(f) for f in self.findings],
            "facts": {k: v for k, v in asdict(self.facts).items() if v is not None and k != "options"},
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
            finding.fixes = advise(finding.fixes, facts.options)  # ranked, none already in effect, at most 3
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
    if diagnosis["verdict"] == "healthy":
        lines = ["Diagnosis: no problem found; notes:"]
    else:
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
        self.model_facts: dict[str, Any] = {}

    def on_train_end(self, trainer: Trainer) -> None:
        from ..train.distributed import unwrap

        self.by_mode = accuracy_by_mode(trainer)  # the final model, before finish() reloads best.pt
        self.model_facts = model_facts(unwrap(trainer.model))

    def on_summary(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        logger = next((c for c in trainer.callbacks if isinstance(c, MetricsLogger)), None)
        rows = read_rows(logger.path) if logger is not None and logger.path.is_file() else []
        if self.by_mode is not None:
            summary["train_accuracy_by_mode"] = self.by_mode
        summary["model_facts"] = self.model_facts
        summary.setdefault("data", {}).update(data_facts(trainer.data))
        record = RunRecord.from_rows(rows, summary, trainer.config.to_dict())
        record.checks = read_checks(trainer.run_dir)
        summary["diagnosis"] = diagnose(record).to_dict()
