"""The JSON and YAML files commands read and write (run directories themselves: run_dirs.py)."""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from pathlib import Path
from typing import Any

import yaml

from .atomic import atomic_write_bytes
from .errors import ConfigError

NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}  # protobuf's JSON names


def json_number(value: float) -> str:
    """A float as a standard JSON value: a non-finite one as the string "NaN", "Infinity" or "-Infinity"."""
    return json.dumps(value) if math.isfinite(value) else f'"{json.dumps(value)}"'


def _finite_only(value: Any) -> Any:
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        value = float(value)
        return value if math.isfinite(value) else json.dumps(value)
    if isinstance(value, dict):
        return {key: _finite_only(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_only(item) for item in value]
    return value


def dumps_json(value: Any, indent: int | None = None) -> str:
    """Standard JSON (never NaN or Infinity literals: those become strings that `loads_json` reads back
    as floats); anything not JSON-native as its str."""
    return json.dumps(_finite_only(value), indent=indent, default=str, allow_nan=False)


def _restore(value: Any) -> Any:
    if isinstance(value, str):
        return NON_FINITE.get(value, value)
    if isinstance(value, dict):
        return {key: _restore(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_restore(item) for item in value]
    return value


def loads_json(text: str) -> Any:
    """JSON written by `dumps_json`: "NaN", "Infinity" and "-Infinity" strings are floats again."""
    return _restore(json.loads(text))


def write_json(path: Path, value: Any) -> None:
    """`value` as indented standard JSON (see `dumps_json`), written whole or not at all."""
    write_text(path, dumps_json(value, indent=2) + "\n")


def write_text(path: str | Path, text: str) -> None:
    """A text file written whole or not at all (a temporary file renamed over it); a full disk is one line."""
    data = text.encode()
    atomic_write_bytes(Path(path), lambda handle: handle.write(data), size=len(data))


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
    write_text(path, yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
