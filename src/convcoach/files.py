"""Run directories and the JSON files commands write into them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any


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
