"""The pre-training checks from the lectures' "babysitting the learning process", by name, and the runner."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch
import torch.nn as nn

from ...config import TrainConfig
from ...data import DataBundle, Normalizer
from ...registry import Registry
from ..check_report import CheckReport, CheckResult
from ..context import CheckBudget, CheckContext

log = logging.getLogger("convcoach")

Check = Callable[[CheckContext], list[CheckResult]]
CHECKS: Registry[Check] = Registry("check")
# cheap checks first: a data or init problem explains a failing sweep or overfit run
ORDER = ["data", "initial_loss", "regularization", "activations", "gradients", "overfit", "lr_sweep"]

from . import activations, dataset, gradients, loss, lr_sweep, overfit  # noqa: E402,F401  (each registers itself)


def run_checks(
    config: TrainConfig,
    model: nn.Module | None = None,
    only: list[str] | None = None,
    budget: CheckBudget | None = None,
    data: DataBundle | None = None,
    normalizer: Normalizer | None = None,
) -> CheckReport:
    """Run the checks (all, or `only` these names) on the configured data and model (or `model`,
    `data`, `normalizer`, as the Trainer takes them)."""
    names = list(only) if only else ORDER
    checks = [(name, CHECKS.get(name)) for name in names]  # unknown names fail before any work
    start = time.perf_counter()
    threads = torch.get_num_threads()
    budget = budget or CheckBudget()
    if budget.threads:
        torch.set_num_threads(budget.threads)
    try:
        context = CheckContext(config, model, data, budget, normalizer)
        results: list[CheckResult] = []
        for name, check in checks:
            log.info("check: %s", name)
            began = time.perf_counter()
            rows = check(context)
            for row in rows:
                row.seconds = round((time.perf_counter() - began) / len(rows), 3)
            results += rows
    finally:
        torch.set_num_threads(threads)
    _point_to_failed_checks(results)
    return CheckReport(results, time.perf_counter() - start, config.to_dict())


def _point_to_failed_checks(results: list[CheckResult]) -> None:
    """A sweep where nothing learns points to the checks that did not pass, never to ones that passed."""
    for result in results:
        if result.name == "lr_sweep" and result.fix == "the learning rate is not the problem":
            others = sorted({r.name for r in results if r.status in ("warn", "fail") and r.name != "lr_sweep"})
            result.fix += (
                f": see {', '.join(others)} above"
                if others
                else "; every other check passed: train briefly and read the diagnosis "
                "(convcoach train --epochs 2, then convcoach diagnose RUN)"
            )
