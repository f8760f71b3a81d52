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


def read_text(path: str | Path, limit: int | None = None, what: str = "file") -> str:
    """A UTF-8 text file's contents; an unreadable, binary or (over `limit` bytes) oversized file is a
    ConfigError naming it."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1 if limit is not None else -1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if limit is not None and len(data) > limit:
        raise ConfigError(f"{path}: over {limit:,} bytes, the most a {what} may hold")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); a {what} must be UTF-8 text"
        ) from None


CONFIG_LIMIT = 1 << 20  # bytes: a config is a few hundred; the bound stops a huge file being parsed at all


class _AliasRefused(yaml.YAMLError):
    pass


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader without aliases (*name): a config needs none, and nested ones expand exponentially (a
    0.3 KB "billion laughs" file took 3.6 GB and 110 s)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _AliasRefused(f"alias *{event.anchor} at line {event.start_mark.line + 1}")
        return super().compose_node(parent, index)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (UTF-8, at most CONFIG_LIMIT bytes, no aliases), with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = read_text(path, CONFIG_LIMIT, "config file")
    try:
        values = yaml.load(text, Loader=_ConfigLoader) or {}
    except _AliasRefused as exc:
        raise ConfigError(f"{path}: YAML {exc}: config files may not use aliases; write the value out") from None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:  # a date like 2001-02-30: ValueError
        raise ConfigError(f"{path}: not valid YAML ({(str(exc).splitlines() or [type(exc).__name__])[0]})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values")
    return values


def save_yaml(config: Any, path: str | Path) -> None:
    """A dataclass (a config) as YAML, in field order."""
    Path(path).write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
