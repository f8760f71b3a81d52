"""Learning-rate schedules as per-iteration multipliers, warmup, and the batch-size rule."""

from __future__ import annotations

import math

import pytest
import torch

from convcoach.errors import ConfigError
from convcoach.train.schedules import SCHEDULES, create_scheduler, multiplier, parse_schedule, scaled_lr

PER_EPOCH = 10


def _values(spec: str, steps: list[int], total: int = 60, warmup: int = 0) -> list[float]:
    m = multiplier(spec, total, PER_EPOCH, warmup)
    return [m(step) for step in steps]


def test_schedule_registry_names():
    assert SCHEDULES.names() == ["constant", "cosine", "exp", "invsqrt", "linear", "onecycle", "step"]


def test_constant_is_always_one():
    assert _values("constant", [0, 30, 59]) == [1.0, 1.0, 1.0]


def test_step_divides_by_ten_at_each_listed_epoch():
    # epochs 0-1: 1, epochs 2-3: 0.1, epochs 4+: 0.01 (10 iterations per epoch)
    steps = [0, 19, 20, 39, 40, 59]
    assert _values("step:2,4", steps) == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_step_milestones_may_be_given_in_any_order():
    assert _values("step:4,2", [19, 20, 40]) == pytest.approx([1, 0.1, 0.01])


def test_step_with_a_gamma():
    assert _values("step:2,4:0.5", [0, 20, 40]) == pytest.approx([1, 0.5, 0.25])


def test_exp_multiplies_by_gamma_every_epoch():
    assert _values("exp:0.9", [0, 9, 10, 25, 35]) == pytest.approx([1, 1, 0.9, 0.81, 0.729])


def test_exp_default_gamma_is_095():
    assert _values("exp", [10])[0] == pytest.approx(0.95)


def test_cosine_goes_from_one_through_half_to_zero():
    assert _values("cosine", [0, 25, 50, 75, 100, 130], total=100) == pytest.approx(
        [1, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 - math.cos(math.pi / 4)), 0, 0], abs=1e-12
    )


def test_linear_decays_to_zero_and_stays_there():
    assert _values("linear", [0, 25, 50, 100, 150], total=100) == pytest.approx([1, 0.75, 0.5, 0, 0])


def test_invsqrt_is_one_over_sqrt_of_the_epoch_count_from_one():
    assert _values("invsqrt", [0, 30, 80]) == pytest.approx([1, 0.5, 1 / 3])


def test_onecycle_starts_at_one_25th_peaks_at_pct_and_ends_near_zero():
    values = _values("onecycle", list(range(101)), total=100)  # pct 0.25: peak at step 25
    assert values[0] == pytest.approx(1 / 25)
    assert values[25] == pytest.approx(1.0)
    assert max(values) == values[25]
    assert values[100] == pytest.approx(1e-4)
    assert all(a < b for a, b in zip(values[:25], values[1:26]))  # rising
    assert all(a > b for a, b in zip(values[25:100], values[26:101]))  # falling


def test_onecycle_pct_moves_the_peak():
    values = _values("onecycle:0.5", list(range(101)), total=100)
    assert values.index(max(values)) == 50
    assert values[50] == pytest.approx(1.0)


@pytest.mark.parametrize("spec", ["onecycle:0", "onecycle:1", "onecycle:1.5"])
def test_onecycle_pct_must_be_inside_0_1(spec):
    with pytest.raises(ConfigError, match="warm fraction must be in"):
        parse_schedule(spec)


def test_warmup_ramps_linearly_over_n_iterations():
    assert _values("constant", [0, 1, 2, 3, 4, 50], warmup=4) == pytest.approx([0.25, 0.5, 0.75, 1, 1, 1])


def test_warmup_multiplies_the_schedule():
    plain = multiplier("cosine", 100, PER_EPOCH)
    warm = multiplier("cosine", 100, PER_EPOCH, warmup=10)
    assert [warm(s) for s in (0, 4, 9, 50)] == pytest.approx([plain(0) * 0.1, plain(4) * 0.5, plain(9), plain(50)])


def test_scheduler_drives_the_optimizer_lr_per_iteration():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = create_scheduler(opt, "step:1,2", total_steps=6, steps_per_epoch=2)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    assert lrs == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_scaled_lr_grows_linearly_with_the_batch_size():
    assert scaled_lr(0.1, 512, 256) == pytest.approx(0.2)
    assert scaled_lr(0.1, 64, 256) == pytest.approx(0.025)
    assert scaled_lr(0.1, 512, None) == 0.1


def test_unknown_schedule_lists_the_names():
    with pytest.raises(
        ConfigError,
        match=(
            r"unknown schedule 'cosin'.*did you mean 'cosine'.*"
            r"known: constant, cosine, exp, invsqrt, linear, onecycle, step"
        ),
    ):
        parse_schedule("cosin")


@pytest.mark.parametrize("spec", ["step", "step:"])
def test_step_without_epochs_is_an_error(spec):
    with pytest.raises(ConfigError, match=r"give the epochs, e\.g\. step:30,60"):
        parse_schedule(spec)


def test_non_numeric_schedule_argument_names_the_spec():
    with pytest.raises(ConfigError, match=r"schedule 'exp:fast': 'fast' is not a number"):
        parse_schedule("exp:fast")
