"""The search space: parsing, errors that name the key, log-uniform sampling, grid enumeration."""

from __future__ import annotations

import math

import optuna
import pytest

from convcoach import ConfigError, TrainConfig
from convcoach.tune.space import (
    Param,
    check_space,
    grid_size,
    grid_space,
    parse_space,
    sample_config,
    space_from_mapping,
    suggest_value,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_issue_space_string_parses_into_ranges_and_choices():
    space = parse_space(
        "lr=1e-6..1e-2:log, weight_decay=1e-6..1e-1:log, dropout=0..0.5, optimizer=[sgd,adam], width=[16,32,64]"
    )
    assert space == {
        "lr": Param("lr", 1e-6, 1e-2, log=True),
        "weight_decay": Param("weight_decay", 1e-6, 1e-1, log=True),
        "dropout": Param("dropout", 0.0, 0.5),
        "optimizer": Param("optimizer", choices=("sgd", "adam")),
        "width": Param("width", choices=(16, 32, 64)),
    }


def test_integer_keys_template_ranges_and_list_choices():
    space = parse_space("depth=2..4, reg=l2:1e-5..1e-1:log, augment=hflip,translate:1..3:int")
    assert space["depth"] == Param("depth", 2.0, 4.0, integer=True)
    assert space["reg"] == Param("reg", 1e-5, 1e-1, log=True, template="l2:{}")
    assert space["augment"] == Param("augment", 1.0, 3.0, integer=True, template="hflip,translate:{}")
    assert space["reg"].value_for_config(0.00123) == "l2:0.00123"
    assert space["augment"].value_for_config(2) == "hflip,translate:2"
    choices = parse_space("augment=[hflip+translate:2, none], depth=[none, 2]")
    assert choices["augment"].choices == ("hflip,translate:2", "none")
    assert choices["depth"].choices == (None, 2)


def test_yaml_mapping_forms():
    space = space_from_mapping(
        {
            "lr": "1e-4..1e-1:log",
            "momentum": {"low": 0.5, "high": 0.99},
            "width": [8, 16],
            "augment": [["hflip", "translate:2"], ["none"]],
        }
    )
    assert space["lr"] == Param("lr", 1e-4, 1e-1, log=True)
    assert space["momentum"] == Param("momentum", 0.5, 0.99)
    assert space["width"].choices == (8, 16)
    assert space["augment"].choices == ("hflip,translate:2", "none")


@pytest.mark.parametrize(
    "text, message",
    [
        ("lrr=1e-4..1e-2:log", "--space: unknown key 'lrr' (did you mean 'lr'?); any TrainConfig key can be searched"),
        ("lr=1e-2..1e-4:log", "--space: lr: the range needs low < high, got 0.01..0.0001"),
        ("dropout=0.3..0.3", "--space: dropout: the range needs low < high, got 0.3..0.3"),
        ("weight_decay=0..1e-2:log", "--space: weight_decay: a log range needs low > 0, got 0"),
        (
            "subset=100..1000",
            "--space: 'subset' cannot be searched: the data are loaded once and shared by every trial",
        ),
        ("epochs=1..5", "--space: 'epochs' cannot be searched: each stage sets it (--stage-epochs)"),
        (
            "optimizer=1..3",
            "--space: optimizer is not numeric: "
            "search it with a choice list [a, b] or a template like reg=l2:1e-5..1e-1:log",
        ),
        ("width=8.5..16", "--space: width is an integer; got the range 8.5..16"),
        ("lr", "--space: 'lr' is not of the form key=LOW..HIGH[:log] or key=[a,b,...]"),
        ("width=[8, 8]", "--space: width: repeated choices in ['8', '8']"),
    ],
)
def test_bad_space_is_a_config_error_naming_the_key(text, message):
    with pytest.raises(ConfigError) as error:
        parse_space(text)
    assert str(error.value) == message


def test_bad_choice_or_range_end_fails_validation_against_the_base_config():
    with pytest.raises(
        ConfigError,
        match=(
            r"space optimizer=\[sgd, adamm\]: optimizer=adamm is not valid: "
            r"unknown optimizer 'adamm' \(did you mean 'adam'\?\)"
        ),
    ):
        check_space(parse_space("optimizer=[sgd,adamm]"), TrainConfig())
    with pytest.raises(
        ConfigError, match=r"space dropout=0..1.5: dropout=1.5 is not valid: dropout must be in \[0.0, 0.99\], got 1.5"
    ):
        check_space(parse_space("dropout=0..1.5"), TrainConfig())
    check_space(parse_space("lr=1e-6..1e-2:log, reg=l2:1e-5..1e-1:log, width=[16,32,64]"), TrainConfig())


def _samples(text: str, count: int = 1000) -> list[float]:
    param = next(iter(parse_space(text).values()))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    return [suggest_value(study.ask(), param) for _ in range(count)]


def test_log_range_is_sampled_log_uniformly():
    values = _samples("lr=1e-6..1e-2:log")
    assert all(1e-6 <= v <= 1e-2 for v in values)
    below_geometric_middle = sum(v < 1e-4 for v in values) / len(values)  # 10**mean(-6, -2)
    below_arithmetic_middle = sum(v < 0.005 for v in values) / len(values)
    assert below_geometric_middle == pytest.approx(0.5, abs=0.05)
    # log-uniform puts (log 0.005 - log 1e-6) / (log 1e-2 - log 1e-6) = 92.5% of draws below 0.005
    assert below_arithmetic_middle == pytest.approx((math.log10(0.005) + 6) / 4, abs=0.03)
    per_decade = [sum(10**e <= v < 10 ** (e + 1) for v in values) / len(values) for e in range(-6, -2)]
    assert per_decade == pytest.approx([0.25] * 4, abs=0.05)


def test_linear_range_is_sampled_uniformly_and_integer_range_gives_ints():
    values = _samples("dropout=0..0.5")
    assert sum(v < 0.25 for v in values) / len(values) == pytest.approx(0.5, abs=0.05)
    widths = _samples("width=8..64", 200)
    assert all(isinstance(w, int) and 8 <= w <= 64 for w in widths)


def test_sample_config_fills_templates_and_validates():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    config, values = sample_config(
        study.ask(), parse_space("reg=l2:1e-5..1e-1:log, augment=hflip,translate:1..3:int"), TrainConfig(), epochs=2
    )
    assert config.epochs == 2
    assert config.reg.startswith("l2:") and 1e-5 <= float(config.reg[3:]) <= 1e-1
    assert config.augment[0] == "hflip" and config.augment[1] in ("translate:1", "translate:2", "translate:3")
    assert values["reg"] == config.reg


def test_grid_enumerates_every_combination_once_then_stops():
    space = parse_space("lr=1e-4..1e-2:log, optimizer=[sgd,adam], width=8..16")
    grid = grid_space(space, points=3)
    assert grid["lr"] == pytest.approx([1e-4, 1e-3, 1e-2])
    assert grid["optimizer"] == ["sgd", "adam"]
    assert grid["width"] == [8, 12, 16]
    assert grid_size(space, 3) == 18
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(grid, seed=0))
    seen = []
    study.optimize(
        lambda trial: seen.append(tuple(suggest_value(trial, p) for p in space.values())) or 0.0, n_trials=50
    )
    assert len(seen) == 18  # the sampler stops the study when the grid is exhausted
    assert {(round(math.log10(lr)), opt, width) for lr, opt, width in seen} == {
        (e, o, w) for e in (-4, -3, -2) for o in ("sgd", "adam") for w in (8, 12, 16)
    }
