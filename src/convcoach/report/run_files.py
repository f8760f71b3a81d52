"""Read what a training run left in its directory: config.yaml, summary.json, env.json, metrics.jsonl, check.json."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..files import load_yaml, loads_json, read_text


@dataclass
class RunFiles:
    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    env: dict[str, Any]
    rows: list[dict[str, Any]]
    check: Any = None
    unreadable_rows: int = 0

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return [row for row in self.rows if row.get("kind") == kind]

    @property
    def name(self) -> str:
        return self.path.name or str(self.path)


def read_json(path: Path) -> Any:
    """A JSON file's value, None when absent, a ConfigError naming the file when malformed."""
    if not path.is_file():
        return None
    text = read_text(path, what="JSON file")
    try:
        return loads_json(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, a 5,000-digit number, [[[[...]]]]
        raise ConfigError(f"{path}: not valid JSON ({str(exc) or type(exc).__name__})") from None


def load_run(run_dir: str | Path) -> RunFiles:
    """A run directory's files; missing optional files are empty, a directory with none of them is an error."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ConfigError(f"run directory not found: {path}")
    if not any((path / name).is_file() for name in ("config.yaml", "metrics.jsonl", "summary.json", "trials.csv")):
        raise ConfigError(
            f"{path}: not a convcoach run directory (no config.yaml, metrics.jsonl, summary.json or trials.csv)"
        )
    config = load_yaml(path / "config.yaml") if (path / "config.yaml").is_file() else {}
    rows, bad = [], 0
    if (path / "metrics.jsonl").is_file():
        for line in read_text(path / "metrics.jsonl", what="metrics log").splitlines():
            if not line.strip():
                continue
            try:
                row = loads_json(line)
            except (ValueError, RecursionError):
                row = None
            if isinstance(row, dict):
                rows.append(row)
            else:
                bad += 1  # a line cut short by a killed run; counted and shown in the report
    return RunFiles(
        path,
        config,
        read_object(path / "summary.json"),
        read_object(path / "env.json"),
        rows,
        read_json(path / "check.json"),
        bad,
    )


def read_object(path: Path) -> dict[str, Any]:
    """A JSON file holding an object ({} when absent); anything else is a ConfigError naming the file."""
    value = read_json(path)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value
