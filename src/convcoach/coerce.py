"""Values from YAML files and command-line flags, converted to a config dataclass's field types with
errors that name the key: '3' -> 3, 'a=1,b=x' -> {'a': 1, 'b': 'x'}, 'hflip,rotate:10' -> a list."""

from __future__ import annotations

import math
import types
import typing
from typing import Any

import yaml

from .errors import ConfigError


def unwrap_optional(annotation: Any) -> Any:
    """`int | None` -> int; other annotations unchanged."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def coerce(key: str, value: Any, annotation: Any) -> Any:
    """Convert a YAML or CLI value to the field's type, with an error naming the key."""
    base = unwrap_optional(annotation)
    if value is None:
        if base is not annotation:
            return None
        raise ConfigError(f"{key} may not be empty")
    origin = typing.get_origin(base)
    try:
        if origin is dict:
            return parse_mapping(key, value)
        if origin is list:
            items = value.split(",") if isinstance(value, str) else list(value)
            return [str(item).strip() for item in items if str(item).strip()]
        if base is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if base is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if base is float:
            if isinstance(value, str) and str in typing.get_args(annotation):
                try:
                    float(value)
                except ValueError:
                    return value.strip().lower()  # a word the field also takes (lr: auto); its spec check rules
            number = float(value)
            if not math.isfinite(number):
                raise ConfigError(f"{key}: '{value}' is not a finite number")
            return number
        return str(value)
    except ConfigError:
        raise
    except (TypeError, ValueError, OverflowError):
        name = getattr(base, "__name__", str(base))
        raise ConfigError(f"{key}: '{value}' is not a valid {name}") from None


def parse_mapping(key: str, value: Any) -> dict[str, Any]:
    """'a=1,b=false' (CLI) or a YAML mapping -> dict with YAML-typed values."""
    if isinstance(value, dict):
        return dict(value)
    result = {}
    for item in str(value).split(","):
        if not item.strip():
            continue
        name, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"{key}: '{item}' is not of the form name=value")
        try:
            result[name.strip()] = yaml.safe_load(raw.strip())
        except yaml.YAMLError:
            raise ConfigError(
                f"{key}: the value of '{name.strip()}' ('{raw.strip()}') is not a plain value; "
                "give name=value pairs separated by commas"
            ) from None
    return result
