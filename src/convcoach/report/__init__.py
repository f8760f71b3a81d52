"""The HTML run report and run comparison: self-contained pages of figures and tables.

The names below load on first use, so importing a light submodule (the CLI's flag definitions)
does not pull in matplotlib."""

from __future__ import annotations

from typing import Any

from . import writer  # noqa: F401  (registers the report as a run callback)

__all__ = ["RunArtifacts", "compare_runs", "write_run_report"]

_HOME = {"compare_runs": ".compare", "RunArtifacts": ".run_report", "write_run_report": ".run_report"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_HOME[name], __name__), name)
