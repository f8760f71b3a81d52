"""Shipped recipes: `recipe: long` is a base config that keys and flags override."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from convcoach import ConfigError, load_config, precision, recipes
from convcoach.cli import build_parser, config_from_args
from convcoach.config import from_dict
from convcoach.recipes import RECIPE_DIR, load_recipe, recipe_names, recipe_rule

ROOT = Path(__file__).resolve().parents[1]


def test_long_recipe_is_the_base_and_other_keys_override_it():
    config = from_dict({"recipe": "long", "epochs": 3, "precision": "bf16"}).validate()
    assert (config.model, config.depth, config.width, config.epochs) == ("resnet", 14, 48, 3)
    assert "erase:0.5" in config.augment


def test_recipe_flag_on_the_command_line():
    args = build_parser().parse_args(["train", "--recipe", "long", "--width", "40"])
    config = config_from_args(args)
    assert (config.recipe, config.depth, config.width, config.epochs) == ("long", 14, 40, 60)


@pytest.mark.parametrize(
    ("given", "native_bf16", "recipe_width", "width"),
    [
        ({}, True, 48, 48),  # auto on an AVX512-BF16/AMX CPU: the wide net
        ({}, False, 32, 32),  # auto on an AVX2-only CPU: trains in fp32, the fp32 block's narrower net
        ({"precision": "fp32"}, True, 32, 32),
        ({"precision": "bf16"}, False, 48, 48),  # asked for bf16: the block does not apply
        ({"precision": "fp32", "width": 64}, False, 32, 64),  # the user's key beats the block
    ],
)
def test_long_recipes_fp32_block_applies_where_the_run_trains_in_fp32(
    monkeypatch, given, native_bf16, recipe_width, width
):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native_bf16)
    assert load_recipe("long", {"device": "cpu", **given})["width"] == recipe_width
    assert from_dict({"recipe": "long", "device": "cpu", **given}).validate().width == width


def test_recipe_rule_says_which_keys_and_whether_they_applied(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    rule = recipe_rule("long", "auto", "cpu")
    assert rule == ("recipe long: width 32 (not 48) where the run trains in fp32; applied: this run trains in fp32")
    assert recipe_rule("long", "bf16", "cpu").endswith("not applied: this run may train in bf16")
    assert recipe_rule(None, "auto", "cpu") is None


def test_an_fp32_block_that_is_not_a_mapping_is_a_config_error(monkeypatch, tmp_path):
    (tmp_path / "odd.yaml").write_text("width: 48\nfp32: 32\n")
    monkeypatch.setattr(recipes, "RECIPE_DIR", tmp_path)
    with pytest.raises(ConfigError, match=r"odd.yaml: 'fp32' must be a mapping of keys, got 32"):
        from_dict({"recipe": "odd"})


def test_configs_long_yaml_is_the_shipped_recipe():
    assert yaml.safe_load((ROOT / "configs" / "long.yaml").read_text()) == {"recipe": "long"}
    assert load_config(ROOT / "configs" / "long.yaml") == from_dict({"recipe": "long"}).validate()
    assert (RECIPE_DIR / "long.yaml").is_file()


def test_unknown_recipe_lists_the_shipped_ones():
    assert "long" in recipe_names()
    with pytest.raises(ConfigError, match=r"unknown recipe 'lnog' \(did you mean 'long'\?\); known: .*long"):
        from_dict({"recipe": "lnog"})


def test_configs_default_yaml_is_every_default():
    from convcoach.config import TrainConfig

    written = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    assert written == dataclasses.asdict(TrainConfig())
    assert (written["epochs"], written["val_fraction"], written["augment"]) == (None, 0.05, ["hflip"])
