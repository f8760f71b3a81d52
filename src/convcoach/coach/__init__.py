"""The coach: sanity checks before training, monitors during it, a diagnosis after it."""
from __future__ import annotations

from typing import Any

__all__ = ["CheckBudget", "CheckReport", "CheckResult", "activation_stats", "diagnose", "diagnose_run", "init_stats", "run_checks"]

# lazy: the trainer imports the monitors, and the checks import the trainer
_HOMES = {
    "CheckBudget": "context", "CheckReport": "report", "CheckResult": "report", "run_checks": "checks",
    "activation_stats": "stats", "init_stats": "probe", "diagnose": "diagnosis", "diagnose_run": "diagnosis",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
