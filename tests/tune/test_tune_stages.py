"""Coarse-to-fine: stage plans and the narrowing rule (min/max of the best trials, widened, in log space for
log ranges)."""

from __future__ import annotations

import math

import pytest

from convcoach import ConfigError
from convcoach.tune.narrowing import Stage, narrow, plan_stages, top_trials
from convcoach.tune.space import parse_space


def test_plan_stages_from_lists_or_defaults():
    assert plan_stages(2, [2, 6], [20, 5], epochs=6, trials=10) == [Stage(1, 2, 20), Stage(2, 6, 5)]
    assert plan_stages(1, None, None, epochs=3, trials=7) == [Stage(1, 3, 7)]
    with pytest.raises(ConfigError, match="stage_epochs needs one value per stage \\(2\\), got 1: 2"):
        plan_stages(2, [2], [20, 5], epochs=6, trials=10)


def test_top_trials_keeps_the_best_fraction():
    results = [(acc / 10, {"i": acc}) for acc in range(10)]
    assert top_trials(results, 0.2) == [{"i": 9}, {"i": 8}]
    assert top_trials(results, 0.5) == [{"i": i} for i in (9, 8, 7, 6, 5)]
    assert top_trials(results[:3], 0.2) == [{"i": 2}, {"i": 1}]  # at least two


def test_log_range_narrows_in_log_space_with_margin():
    space = parse_space("lr=1e-6..1e-2:log, dropout=0..0.5, optimizer=[sgd,adam,adamw]")
    best = [{"lr": 1e-4, "dropout": 0.1, "optimizer": "adam"}, {"lr": 1e-3, "dropout": 0.2, "optimizer": "adam"}]
    narrowed = narrow(space, best, margin=0.25)
    # log10 range [-4, -3] widened by 0.25 decades each side
    assert math.log10(narrowed["lr"].low) == pytest.approx(-4.25)
    assert math.log10(narrowed["lr"].high) == pytest.approx(-2.75)
    assert narrowed["lr"].log
    # linear range [0.1, 0.2] widened by 0.025 each side
    assert (narrowed["dropout"].low, narrowed["dropout"].high) == pytest.approx((0.075, 0.225))
    assert narrowed["optimizer"].choices == ("adam",)


def test_narrowed_range_is_clipped_to_the_original_and_never_collapses():
    space = parse_space("lr=1e-6..1e-2:log, dropout=0..0.5, width=8..64")
    best = [{"lr": 1e-2, "dropout": 0.2, "width": 32}, {"lr": 5e-3, "dropout": 0.2, "width": 32}]
    narrowed = narrow(space, best, margin=0.25)
    assert narrowed["lr"].high == 1e-2  # exactly the original edge
    assert math.log10(narrowed["lr"].low) == pytest.approx(math.log10(5e-3) - 0.25 * math.log10(2))
    # all best trials agree: a window of 10% of the original width around them
    assert (narrowed["dropout"].low, narrowed["dropout"].high) == pytest.approx((0.175, 0.225))
    assert (narrowed["width"].low, narrowed["width"].high) == (29, 35)  # 32 +- 2.8, rounded outwards
    assert narrowed["width"].integer


def test_narrowing_without_results_keeps_the_space():
    space = parse_space("lr=1e-6..1e-2:log")
    assert narrow(space, []) == space
