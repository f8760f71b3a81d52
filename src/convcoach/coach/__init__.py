"""The coach: sanity checks before training, monitors during it, a diagnosis after it."""

from __future__ import annotations

from . import attach, data_rules, option_rules, split_rules  # noqa: F401  (register run callbacks and rules)
from .check_report import CheckReport, CheckResult
from .checks import CHECKS, run_checks
from .context import CheckBudget
from .diagnosis import diagnose, diagnose_run
from .probe import init_stats
from .stats import activation_stats

__all__ = [
    "CHECKS",
    "CheckBudget",
    "CheckReport",
    "CheckResult",
    "activation_stats",
    "diagnose",
    "diagnose_run",
    "init_stats",
    "run_checks",
]
