"""Run directories, and the JSON and YAML files commands read and write."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


def default_run_dir(prefix: str = "") -> Path:
    """runs/<prefix><timestamp>: where a command writes when --out is not given."""
    return Path("runs") / (prefix + datetime.now().strftime("%Y%m%d-%H%M%S"))


def new_run_dir(out: str | None) -> Path:
    """`out` (or a fresh default), created."""
    path = Path(out) if out else default_run_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Path, value: Any) -> None:
    """`value` as indented JSON (anything not JSON-native as its str)."""
    Path(path).write_text(json.dumps(value, indent=2, default=str) + "\n")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values")
    return values


def save_yaml(config: Any, path: str | Path) -> None:
    """A dataclass (a config) as YAML, in field order."""
    Path(path).write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
