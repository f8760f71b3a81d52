"""Shipped recipes: `recipe: long` is a base config that keys and flags override."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from convcoach import ConfigError, load_config
from convcoach.cli import build_parser, config_from_args
from convcoach.config import from_dict
from convcoach.recipes import RECIPE_DIR, recipe_names

ROOT = Path(__file__).resolve().parents[1]


def test_long_recipe_is_the_base_and_other_keys_override_it():
    config = from_dict({"recipe": "long", "epochs": 3}).validate()
    assert (config.model, config.depth, config.width, config.epochs) == ("resnet", 14, 32, 3)
    assert "erase:0.5" in config.augment


def test_recipe_flag_on_the_command_line():
    args = build_parser().parse_args(["train", "--recipe", "long", "--width", "48"])
    config = config_from_args(args)
    assert (config.recipe, config.depth, config.width, config.epochs) == ("long", 14, 48, 60)


def test_configs_long_yaml_matches_the_shipped_recipe():
    assert yaml.safe_load((ROOT / "configs" / "long.yaml").read_text()) == yaml.safe_load(
        (RECIPE_DIR / "long.yaml").read_text()
    )
    assert load_config(ROOT / "configs" / "long.yaml").depth == 14


def test_unknown_recipe_lists_the_shipped_ones():
    assert "long" in recipe_names()
    with pytest.raises(ConfigError, match=r"unknown recipe 'lnog' \(did you mean 'long'\?\); known: .*long"):
        from_dict({"recipe": "lnog"})


def test_configs_default_yaml_is_every_default():
    from convcoach.config import TrainConfig

    written = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    assert written == dataclasses.asdict(TrainConfig())
    assert (written["epochs"], written["val_fraction"], written["augment"]) == (None, 0.05, ["hflip"])
