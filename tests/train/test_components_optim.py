"""Optimizers by name, momentum conventions, decay groups; and the precision choice."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from convcoach import precision
from convcoach.errors import ConfigError
from convcoach.train.optim import DEFAULT_LR, OPTIMIZERS, OptimSettings, create_optimizer, default_lr, parameter_groups


def _small_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))


class _Scalar(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))


def test_optimizer_registry_names():
    assert OPTIMIZERS.names() == ["adagrad", "adam", "adamw", "momentum", "muon", "nesterov", "rmsprop", "sgd"]
    assert sorted(DEFAULT_LR) == OPTIMIZERS.names()


# loss = w on a scalar starting at 0, so the gradient is exactly 1 at every step; default LR and
# momentum 0.9, no weight decay. The weight after steps 1 and 2, worked out by hand:
#   sgd (lr 0.1): -0.1, -0.2
#   momentum (lr 0.05, v = 0.9 v + g): v = 1, 1.9 -> -0.05, -0.05 - 0.095 = -0.145
#   nesterov (lr 0.8, step g + 0.9 v): 1.9, 2.71 -> -1.52, -0.8 * 4.61 = -3.688
#   adagrad (lr 0.01, G = sum g^2): -0.01, -0.01 - 0.01 / sqrt(2) = -0.0170711
#   rmsprop (lr 1e-3, alpha 0.99): E[g^2] = 0.01, 0.0199 -> -1e-3 / 0.1, -0.01 - 1e-3 / sqrt(0.0199) = -0.0170888
#   adam, adamw (lr 1e-3): bias-corrected m / sqrt(v) = 1 at every step -> -0.001, -0.002
#   muon (lr 0.8): a scalar is no conv filter, so it takes the Nesterov steps
TWO_STEPS = {
    "sgd": (-0.1, -0.2),
    "momentum": (-0.05, -0.145),
    "nesterov": (-1.52, -3.688),
    "adagrad": (-0.01, -0.01 - 0.01 / 2**0.5),
    "rmsprop": (-0.01, -0.01 - 1e-3 / 0.0199**0.5),
    "adam": (-0.001, -0.002),
    "adamw": (-0.001, -0.002),
    "muon": (-1.52, -3.688),
}


@pytest.mark.parametrize("name", sorted(TWO_STEPS))
def test_every_optimizer_takes_its_textbook_steps_at_its_default_lr(name):
    model = _Scalar()
    opt = create_optimizer(name, model, OptimSettings())
    assert [(g["lr"], g["weight_decay"]) for g in opt.param_groups] == [(default_lr(name), 0.0)]
    weights = []
    for _ in range(2):
        opt.zero_grad()
        model.w.backward()  # loss = w: dloss/dw = 1
        opt.step()
        weights.append(model.w.item())
    assert weights == pytest.approx(TWO_STEPS[name], rel=1e-5)


def test_the_step_table_covers_every_optimizer():
    assert sorted(TWO_STEPS) == OPTIMIZERS.names()


def test_the_default_lrs_are_the_documented_ones():
    assert DEFAULT_LR == {
        "sgd": 0.1,
        "momentum": 0.05,
        "nesterov": 0.8,
        "adagrad": 0.01,
        "rmsprop": 1e-3,
        "adam": 1e-3,
        "adamw": 1e-3,
        "muon": 0.8,
    }


def test_explicit_lr_overrides_the_default():
    opt = create_optimizer("sgd", _small_net(), OptimSettings(lr=0.03))
    assert [g["lr"] for g in opt.param_groups] == [0.03, 0.03]


def test_adam_defaults_are_lr_1e3_and_betas_09_0999():
    opt = create_optimizer("adam", _small_net(), OptimSettings())
    assert isinstance(opt, torch.optim.Adam)
    assert opt.param_groups[0]["lr"] == 1e-3
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)


def test_adamw_is_decoupled_adam():
    opt = create_optimizer("adamw", _small_net(), OptimSettings(weight_decay=0.01))
    assert isinstance(opt, torch.optim.AdamW)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]


def test_sgd_has_no_momentum_and_rmsprop_alpha_is_099():
    assert create_optimizer("sgd", _small_net(), OptimSettings()).param_groups[0]["momentum"] == 0
    assert create_optimizer("rmsprop", _small_net(), OptimSettings()).param_groups[0]["alpha"] == 0.99


def _momentum_run(convention: str, steps: int, rho: float = 0.9) -> tuple[list[float], list[float]]:
    """Constant gradient g = 1 on a scalar, lr = 1: the velocity and the parameter after each step."""
    model = _Scalar()
    opt = create_optimizer("momentum", model, OptimSettings(lr=1.0, momentum=rho, momentum_convention=convention))
    velocities, params = [], []
    for _ in range(steps):
        model.w.grad = torch.tensor(1.0)
        opt.step()
        velocities.append(opt.state[model.w]["momentum_buffer"].item())
        params.append(model.w.item())
    return velocities, params


def test_momentum_sum_convention_accumulates_v_rho_v_plus_g():
    # v1 = g = 1, v2 = 0.9 * 1 + 1 = 1.9; w = -(1 + 1.9)
    velocities, params = _momentum_run("sum", 2)
    assert velocities == pytest.approx([1.0, 1.9])
    assert params == pytest.approx([-1.0, -2.9])


def test_momentum_ema_convention_is_torch_dampening_whose_first_step_is_undamped():
    # The lecture writes vel = 0; vel = rho*vel + (1-rho)*g, which would give v1 = 0.1, v2 = 0.19.
    # 'ema' maps to torch's SGD(dampening=rho), and torch initializes the buffer to the raw gradient on
    # the first step (buf = g, no dampening), then applies v = rho*v + (1-rho)*g: v1 = 1, v2 = 0.9 + 0.1 = 1.
    # So with a constant gradient the ema velocity is g from the start (a bias-corrected EMA, in effect).
    velocities, params = _momentum_run("ema", 2)
    assert velocities == pytest.approx([1.0, 1.0])
    assert params == pytest.approx([-1.0, -2.0])


def test_momentum_conventions_differ_by_a_factor_1_over_1_minus_rho_at_steady_state():
    sum_v, _ = _momentum_run("sum", 200)
    ema_v, _ = _momentum_run("ema", 200)
    assert sum_v[-1] == pytest.approx(1 / (1 - 0.9), rel=1e-6)  # g / (1 - rho) = 10
    assert ema_v[-1] == pytest.approx(1.0)


def test_momentum_dampening_follows_the_convention():
    assert (
        create_optimizer("momentum", _small_net(), OptimSettings(momentum_convention="sum")).param_groups[0][
            "dampening"
        ]
        == 0.0
    )
    ema = create_optimizer(
        "momentum", _small_net(), OptimSettings(momentum=0.8, momentum_convention="ema")
    ).param_groups[0]
    assert (ema["momentum"], ema["dampening"]) == (0.8, 0.8)


def test_nesterov_sets_nesterov_with_undamped_momentum():
    group = create_optimizer("nesterov", _small_net(), OptimSettings()).param_groups[0]
    assert group["nesterov"] is True
    assert (group["momentum"], group["dampening"]) == (0.9, 0)


def test_nesterov_update_looks_ahead():
    # torch Nesterov: v = rho*v + g; step = g + rho*v. Constant g = 1, lr = 1: steps 1.9 then 1 + 0.9*1.9 = 2.71
    model = _Scalar()
    opt = create_optimizer("nesterov", model, OptimSettings(lr=1.0))
    params = []
    for _ in range(2):
        model.w.grad = torch.tensor(1.0)
        opt.step()
        params.append(model.w.item())
    assert params == pytest.approx([-1.9, -1.9 - 2.71])


def test_parameter_groups_decay_conv_and_linear_weights_only():
    model = _small_net()
    decay, no_decay = parameter_groups(model, 5e-4)
    conv, bn, fc = model[0], model[1], model[4]
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(conv.weight), id(fc.weight)}
    assert {id(p) for p in no_decay["params"]} == {id(conv.bias), id(bn.weight), id(bn.bias), id(fc.bias)}


def test_parameter_groups_skip_frozen_and_drop_empty_groups():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))
    model[0].weight.requires_grad_(False)
    groups = parameter_groups(model, 0.1)
    assert len(groups) == 1
    assert [id(p) for p in groups[0]["params"]] == [id(model[1].weight)]


def test_create_optimizer_puts_weight_decay_on_the_decay_group():
    opt = create_optimizer("nesterov", _small_net(), OptimSettings(weight_decay=5e-4))
    assert [g["weight_decay"] for g in opt.param_groups] == [5e-4, 0.0]
    assert [len(g["params"]) for g in opt.param_groups] == [2, 4]


def test_unknown_optimizer_lists_the_names():
    with pytest.raises(
        ConfigError,
        match=r"unknown optimizer 'adamm'.*known: adagrad, adam, adamw, momentum, muon, nesterov, rmsprop, sgd",
    ):
        create_optimizer("adamm", _small_net(), OptimSettings())


# ---- precision ------------------------------------------------------------------------------

CPU = torch.device("cpu")


def _fake_timer(fp32: float, bf16: float):
    calls: list[str] = []

    def time_step(name: str) -> float:
        calls.append(name)
        return {"fp32": fp32, "bf16": bf16}[name]

    return time_step, calls


def test_auto_precision_is_fp32_on_a_cpu_without_native_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    time_step, calls = _fake_timer(0.010, 0.001)
    chosen, reason = precision.resolve_precision("auto", CPU, time_step)
    assert chosen == "fp32"
    assert "no native bf16" in reason
    assert calls == []  # no timing without the hardware


def test_auto_precision_is_bf16_when_native_and_the_timed_step_is_faster(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    time_step, calls = _fake_timer(0.010, 0.005)
    chosen, reason = precision.resolve_precision("auto", CPU, time_step)
    assert chosen == "bf16"
    assert "5 ms vs 10 ms" in reason
    assert calls == ["fp32", "bf16"]  # 0.5x of fp32 in the first pair: a clear win, no more rounds


def test_auto_precision_times_every_round_when_the_first_pair_is_close(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    time_step, calls = _fake_timer(0.010, 0.0085)  # 0.85x: under the veto line but not a clear win
    assert precision.resolve_precision("auto", CPU, time_step)[0] == "bf16"
    assert calls == ["fp32", "bf16"] * precision.TIMING_ROUNDS  # alternating, so both meet the same host state


def test_auto_precision_compares_the_fastest_of_alternating_timings(monkeypatch):
    # one bf16 round slowed by another process (25 ms) and one fp32 round too (30 ms): the fastest of
    # each, 7 ms vs 10 ms, still says bf16; a single pair of timings would have said fp32
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    times = {"fp32": iter([0.010, 0.030, 0.011]), "bf16": iter([0.025, 0.007, 0.008])}
    chosen, reason = precision.resolve_precision("auto", CPU, lambda name: next(times[name]))
    assert (chosen, reason) == ("bf16", "CPU has native bf16 and a timed step took 7 ms vs 10 ms in fp32")


@pytest.mark.parametrize(
    ("bf16_seconds", "chosen"), [(0.0112, "fp32"), (0.020, "fp32"), (0.0109, "bf16"), (0.010, "bf16")]
)
def test_auto_precision_is_fp32_only_when_bf16_times_over_10_percent_slower(monkeypatch, bf16_seconds, chosen):
    # a loaded host timed a conv net even (71 vs 70 ms) though bf16 is 1.3x faster idle: only a clear
    # loss vetoes native bf16
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    time_step, _ = _fake_timer(0.010, bf16_seconds)
    chosen_now, reason = precision.resolve_precision("auto", CPU, time_step)
    assert chosen_now == chosen
    assert ("slower (" in reason) == (chosen == "fp32")


def test_auto_precision_without_a_timer_trusts_native_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.resolve_precision("auto", CPU) == ("bf16", "CPU has native bf16")


@pytest.mark.parametrize("native, chosen", [(True, "bf16"), (False, "fp16")])
def test_auto_precision_on_cuda_takes_bf16_only_when_native_not_emulated(monkeypatch, native, chosen):
    # torch's default is_bf16_supported() also says True for pre-Ampere GPUs that only emulate bf16
    import contextlib

    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation or native)
    assert precision.resolve_precision("auto", torch.device("cuda", 1))[0] == chosen


def test_fp16_on_cpu_is_a_config_error():
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        precision.resolve_precision("fp16", CPU)


@pytest.mark.parametrize("name", ["fp32", "bf16"])
def test_explicit_cpu_precision_is_kept(name, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.resolve_precision(name, CPU) == (name, "requested")


def test_autocast_fp32_is_a_no_op_and_bf16_casts_matmuls():
    a = torch.randn(2, 2)
    with precision.autocast("fp32", CPU):
        assert (a @ a).dtype == torch.float32
    with precision.autocast("bf16", CPU):
        assert (a @ a).dtype == torch.bfloat16


def test_cpu_device_resolves_and_missing_cuda_is_an_error():
    assert precision.resolve_device("cpu") == CPU
    if not torch.cuda.is_available():
        assert precision.resolve_device("auto") == CPU
        with pytest.raises(ConfigError, match="CUDA is not available"):
            precision.resolve_device("cuda")


def test_timed_returns_the_median_after_a_warm_up(monkeypatch):
    # a fake clock that only the step advances: a 0.4 s warm-up, then steps of 0.5, 0.1 and 0.2 s
    clock = [0.0]
    durations = iter([0.4, 0.5, 0.1, 0.2, 2.0, 3.0, 9.0])

    def step() -> None:
        clock[0] += next(durations)

    monkeypatch.setattr(precision.time, "perf_counter", lambda: clock[0])
    # the median of the three timed steps (not the mean 0.267, nor 0.5 had the warm-up been timed)
    assert precision.timed(step, repeats=3) == pytest.approx(0.2)
    assert clock[0] == pytest.approx(1.2)  # the warm-up and exactly three timed calls
    # a warm-up over `slow` (0.5 s): one timed call, a 224 px network's step is not noise-dominated
    assert precision.timed(step, repeats=3) == pytest.approx(3.0)
    assert clock[0] == pytest.approx(6.2)
