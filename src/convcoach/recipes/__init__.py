"""Shipped base configs: `recipe: NAME` (or `--recipe NAME`) starts from recipes/NAME.yaml.

A recipe may hold an `fp32:` block of keys that replace its own where the run will train in fp32
(`precision: fp32`, or `auto` on a CPU without native bf16): the long recipe's wider net pays off
only where bf16 makes it cheap. Keys and flags the user gives override both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..files import load_yaml
from ..registry import suggest

RECIPE_DIR = Path(__file__).parent
FP32_BLOCK = "fp32"


def recipe_names() -> list[str]:
    return sorted(path.stem for path in RECIPE_DIR.glob("*.yaml"))


def _recipe_file(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the recipe's keys, its fp32 block); an unknown name is a ConfigError listing the shipped ones."""
    path = RECIPE_DIR / f"{name}.yaml"
    if not path.is_file():
        names = recipe_names()
        raise ConfigError(f"unknown recipe '{name}'{suggest(name, names)}; known: {', '.join(names)}")
    values = load_yaml(path)
    if "recipe" in values:
        raise ConfigError(f"{path}: a recipe may not name another recipe")
    block = values.pop(FP32_BLOCK, None) or {}
    if not isinstance(block, dict):
        raise ConfigError(f"{path}: '{FP32_BLOCK}' must be a mapping of keys, got {block!r}")
    return values, block


def trains_in_fp32(precision: str, device: str) -> bool:
    """Whether a run with these settings trains in fp32, as far as the hardware says before any timing:
    `fp32` asked for, or `auto` on a CPU without native bf16 (AVX512-BF16 or AMX)."""
    if precision != "auto":
        return precision == "fp32"
    from ..precision import cpu_has_native_bf16, resolve_device  # torch only for a recipe with an fp32 block

    return resolve_device(device).type == "cpu" and not cpu_has_native_bf16()


def load_recipe(name: str, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recipe's keys, with its fp32 block applied where the run (`given` keys first) trains in fp32."""
    values, block = _recipe_file(name)
    given = given or {}
    if block and trains_in_fp32(
        str(given.get("precision", values.get("precision", "auto"))), str(given.get("device", "auto"))
    ):
        values.update(block)
    return values


def recipe_rule(name: str | None, precision: str, device: str) -> str | None:
    """The recipe's fp32 rule in words, for env.json (None without a recipe or an fp32 block)."""
    if not name:
        return None
    values, block = _recipe_file(name)
    if not block:
        return None
    keys = ", ".join(f"{key} {block[key]} (not {values.get(key)})" for key in block)
    applied = trains_in_fp32(precision, device)
    where = "this run trains in fp32" if applied else "this run may train in bf16"
    return f"recipe {name}: {keys} where the run trains in fp32; {'applied' if applied else 'not applied'}: {where}"
