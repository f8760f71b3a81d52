"""Name -> builder registries with errors that list the known names and suggest the nearest."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


def suggest(name: str, options: list[str]) -> str:
    """' (did you mean X?)' for the closest option, or ''."""
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry(Generic[T]):
    """A dict of named builders; `get` of an unknown name raises a ConfigError listing the known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, *names: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            for name in names:
                if name in self._items:
                    raise KeyError(f"{self.kind} '{name}' registered twice")
                self._items[name] = item
            return item

        return add

    def get(self, name: str) -> T:
        if name not in self._items:
            known = sorted(self._items)
            raise ConfigError(f"unknown {self.kind} '{name}'{suggest(name, known)}; known: {', '.join(known)}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))


class SpecArgs(list):
    """A spec's arguments that remember how many a builder read, so `check_all_read` can name the
    ones it would silently ignore ('hflip:0.5:3')."""

    def __init__(self, items: list[str]) -> None:
        super().__init__(items)
        self.read = 0

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            self.read = max(self.read, max(range(*index.indices(len(self))), default=-1) + 1)
        else:
            self.read = max(self.read, index + 1 if index >= 0 else len(self))
        return super().__getitem__(index)

    def __iter__(self):  # type: ignore[override]
        self.read = len(self)
        return super().__iter__()

    def allow(self, count: int) -> None:
        """Mark the first `count` arguments as used where a later step reads them (e.g. top:K)."""
        self.read = max(self.read, min(count, len(self)))

    def check_all_read(self, spec: str, what: str) -> None:
        """Raise if the builder left arguments unread: they would be ignored without a word."""
        if len(self) > self.read:
            name = spec.split(":")[0].strip()
            allowed = (
                f"takes at most {self.read} argument{'s' if self.read != 1 else ''}"
                if self.read
                else "takes no arguments"
            )
            raise ConfigError(
                f"{what} '{spec}': '{name}' {allowed}, got {len(self)} "
                f"({':'.join(list.__getitem__(self, slice(self.read, None)))} would be ignored)"
            )


def parse_spec(spec: str) -> tuple[str, SpecArgs]:
    """Split 'name:arg1:arg2' into ('name', ['arg1', 'arg2']); commas inside args are kept."""
    name, *args = spec.strip().split(":")
    return name.strip().lower(), SpecArgs([a.strip() for a in args])


def spec_float(spec: str, value: str, what: str) -> float:
    """Parse a numeric spec argument, naming the spec when it is not a number."""
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{what} '{spec}': '{value}' is not a number") from None
    if not math.isfinite(number):
        raise ConfigError(f"{what} '{spec}': '{value}' is not a finite number")
    return number


# config.py imports no feature package: each registers the check of the spec strings it parses here
# (kind -> check(value, config)), and TrainConfig.validate looks them up by the field's `spec`
SPEC_CHECKS: Registry[Callable[[Any, Any], None]] = Registry("config spec check")


def spec_check(kind: str) -> Callable[[Callable[[Any, Any], None]], Callable[[Any, Any], None]]:
    """Register `check(value, config)` for the config fields whose metadata names `kind`."""
    return SPEC_CHECKS.register(kind)


def check_spec(kind: str, value: Any, config: Any) -> None:
    SPEC_CHECKS.get(kind)(value, config)
