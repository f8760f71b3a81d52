"""Check 6: per-layer activation statistics at init on a data batch (lecture 004, "weight
initialization: activation statistics"): shrinking, growing, saturated or dead layers."""

from __future__ import annotations

from ..check_report import CheckResult, worst
from ..context import CheckContext
from ..stats import activation_stats, interpret
from . import CHECKS


@CHECKS.register("activations")
def activations(context: CheckContext) -> list[CheckResult]:
    model = context.fresh_model()
    x, _ = context.batch(context.budget.stats_batch)
    stats = activation_stats(model, x)
    details = {"layers": [s.to_dict() for s in stats]}
    if not stats:
        return [CheckResult("activations", "skip", "no activation or conv/linear layers to watch", "", details)]
    stds = " ".join(f"{s.std:.2g}" for s in stats[:8]) + (" ..." if len(stats) > 8 else "")
    findings = interpret(stats)
    if not findings:
        return [
            CheckResult(
                "activations", "pass", f"{len(stats)} layers well scaled at init (std per layer: {stds})", "", details
            )
        ]
    status = worst([f.severity for f in findings])
    first = next(f for f in findings if f.severity == status)
    details["findings"] = [f.__dict__ for f in findings]
    others = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
    return [CheckResult("activations", status, f"{first.message}{others}; std per layer: {stds}", first.fix, details)]
