"""Shipped base configs: `recipe: NAME` (or `--recipe NAME`) starts from recipes/NAME.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..files import load_yaml
from ..registry import suggest

RECIPE_DIR = Path(__file__).parent


def recipe_names() -> list[str]:
    return sorted(path.stem for path in RECIPE_DIR.glob("*.yaml"))


def load_recipe(name: str) -> dict[str, Any]:
    """The recipe's keys; an unknown name is a ConfigError listing the shipped ones."""
    path = RECIPE_DIR / f"{name}.yaml"
    if not path.is_file():
        names = recipe_names()
        raise ConfigError(f"unknown recipe '{name}'{suggest(name, names)}; known: {', '.join(names)}")
    values = load_yaml(path)
    if "recipe" in values:
        raise ConfigError(f"{path}: a recipe may not name another recipe")
    return values
