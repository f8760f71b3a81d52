"""A run as the diagnosis reads it: the metrics log's iteration, epoch and monitor rows, summary.json
and the options in config.yaml; from a finished Trainer or from a run directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..files import load_yaml, loads_json, read_text


@dataclass
class RunRecord:
    """What a run left behind: iteration and epoch rows, monitor rows by monitor, and its summary."""

    iterations: list[dict[str, Any]]
    epochs: list[dict[str, Any]]
    monitors: dict[str, list[dict[str, Any]]]
    summary: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)  # the run's TrainConfig, as config.yaml holds it
    checks: list[dict[str, Any]] = field(default_factory=list)  # check.json's results, when the run has one

    @classmethod
    def from_rows(
        cls, rows: list[dict[str, Any]], summary: dict[str, Any] | None = None, options: dict[str, Any] | None = None
    ) -> RunRecord:
        monitors: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if row.get("kind") == "monitor":
                monitors.setdefault(row["monitor"], []).append(row)
        return cls(
            [r for r in rows if r.get("kind") == "iter"],
            [r for r in rows if r.get("kind") == "epoch"],
            monitors,
            summary or {},
            options or {},
        )

    @classmethod
    def from_run_dir(cls, run_dir: str | Path) -> RunRecord:
        run_dir = Path(run_dir)
        metrics = run_dir / "metrics.jsonl"
        if not metrics.is_file():
            raise ConfigError(f"{run_dir}: no metrics.jsonl (expected a training run directory)")
        from ..report.run_files import read_object

        config = run_dir / "config.yaml"
        options = load_yaml(config) if config.is_file() else {}
        record = cls.from_rows(read_rows(metrics), read_object(run_dir / "summary.json"), options)
        record.checks = read_checks(run_dir)
        return record


def read_checks(run_dir: Path) -> list[dict[str, Any]]:
    """The results of `convcoach check --out RUN_DIR` (check.json), if it was run there."""
    from ..report.run_files import read_object

    path = Path(run_dir) / "check.json"
    results = read_object(path).get("results") if path.is_file() else None
    return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(read_text(path, what="metrics log").splitlines(), start=1):
        if line.strip():
            try:
                row = loads_json(line)
            except (ValueError, RecursionError):  # JSONDecodeError, a 5,000-digit number, [[[[...]]]]
                raise ConfigError(f"{path}:{number}: not a JSON line") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{number}: not a metrics row (a JSON object)")
            rows.append(row)
    return rows
