"""Muon: Newton-Schulz orthogonalization, norm-kept filter steps, SGD for the rest, config and a run."""

from __future__ import annotations

import io
import logging

import pytest
import torch
import torch.nn as nn
from conftest import small_config

from convcoach import TrainConfig, Trainer, precision
from convcoach.errors import ConfigError
from convcoach.train.muon import Muon, iteration_dtype, orthogonalize, split_filters
from convcoach.train.optim import OptimSettings, create_optimizer
from convcoach.train.setup import warn_unused


@pytest.mark.parametrize("shape", [(16, 144), (144, 16), (32, 288), (10, 10)])
def test_orthogonalize_brings_every_singular_value_near_one(shape):
    torch.manual_seed(0)
    rows, cols = shape
    rank = min(shape)
    u, _ = torch.linalg.qr(torch.randn(rows, rank))
    v, _ = torch.linalg.qr(torch.randn(cols, rank))
    matrix = u @ torch.diag(torch.logspace(0, 2, rank)) @ v.T  # singular values 1 ... 100
    after = torch.linalg.svdvals(orthogonalize(matrix))
    assert 0.65 < after.min() and after.max() < 1.16  # the quintic iteration's band: 100x spread in, <1.8x out
    assert orthogonalize(matrix).shape == shape


def test_orthogonalize_of_diag_3_1_keeps_the_axes_and_evens_the_scales():
    out = orthogonalize(torch.diag(torch.tensor([3.0, 1.0])))
    assert out[0, 1].item() == pytest.approx(0.0, abs=1e-6) and out[1, 0].item() == pytest.approx(0.0, abs=1e-6)
    # 3 : 1 in; after 5 steps both sit in the band (the quintic overshoots, so the order may flip)
    assert out[0, 0].item() == pytest.approx(0.7530, abs=1e-3)
    assert out[1, 1].item() == pytest.approx(1.1337, abs=1e-3)


def test_orthogonalize_of_zero_is_zero_not_nan():
    assert torch.equal(orthogonalize(torch.zeros(3, 4)), torch.zeros(3, 4))


def test_the_fused_iteration_is_the_textbook_quintic_one():
    torch.manual_seed(0)
    x = torch.randn(3, 8, 20)
    a, b, c = 3.4445, -4.7750, 2.0315
    expected = x / torch.linalg.vector_norm(x, dim=(-2, -1), keepdim=True)
    for _ in range(3):
        gram = expected @ expected.mT
        expected = a * expected + (b * gram + c * gram @ gram) @ expected
    assert torch.allclose(orthogonalize(x, 3), expected, atol=1e-5)
    assert torch.allclose(orthogonalize(x[1], 3), expected[1], atol=1e-5)  # a 2-D matrix alone: the same


def test_a_bf16_iteration_lands_in_the_same_band_as_fp32():
    torch.manual_seed(0)
    x = torch.randn(2, 192, 1728)
    fp32 = torch.linalg.svdvals(orthogonalize(x, 3))
    bf16_result = orthogonalize(x, 3, dtype=torch.bfloat16)
    assert bf16_result.dtype == torch.float32
    bf16 = torch.linalg.svdvals(bf16_result)
    assert (bf16 - fp32).abs().max() < 0.02  # same singular values to bf16's rounding
    assert 0.7 < bf16.min() and bf16.max() < 1.25


@pytest.mark.parametrize("native", [True, False])
def test_large_filter_matrices_iterate_in_bf16_only_where_it_is_native(monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    large = torch.zeros(3, 96, 864)  # 82,944 entries each: the long recipe's middle stage
    small = torch.zeros(3, 64, 576)  # the default net's widest: fp32 (bf16 is no faster there)
    assert iteration_dtype(large) == (torch.bfloat16 if native else torch.float32)
    assert iteration_dtype(small) == torch.float32


def test_a_step_leaves_every_gradient_as_backward_made_it():
    # the coach's gradient monitor reads .grad after the step (torch's foreach Nesterov would have added
    # the momentum into it)
    model = _conv_and_head()
    opt = create_optimizer("muon", model, OptimSettings(lr=0.5, momentum=0.9, weight_decay=5e-4, muon_lr=0.1))
    for _ in range(2):
        model.zero_grad()
        model(torch.randn(8, 2, 6, 6)).logsumexp(1).sum().backward()
        grads = [p.grad.clone() for p in model.parameters()]
        opt.step()
        assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))


def test_banks_of_one_shape_stepped_together_move_as_each_would_alone():
    # three 8x4x3x3 banks (one stored channels_last, as the trainer's model is) and one of another shape
    torch.manual_seed(0)
    shapes = [(8, 4, 3, 3), (8, 4, 3, 3), (8, 4, 3, 3), (16, 8, 1, 1)]
    together = [nn.Parameter(torch.randn(shape)) for shape in shapes]
    together[1] = nn.Parameter(together[1].detach().contiguous(memory_format=torch.channels_last))
    alone = [nn.Parameter(p.detach().clone()) for p in together]
    grads = [[torch.randn(shape) for shape in shapes] for _ in range(3)]
    batched = Muon([{"params": together, "orthogonal": True}], lr=0.05)
    single = [Muon([{"params": [p], "orthogonal": True}], lr=0.05) for p in alone]
    for step in grads:
        for p, q, g in zip(together, alone, step):
            p.grad, q.grad = g.clone(), g.clone()
        batched.step()
        for opt in single:
            opt.step()
    for p, q in zip(together, alone):
        assert torch.allclose(p, q, atol=1e-6)
        assert p.norm().item() == pytest.approx(batched.state[p]["norm"].item(), rel=1e-5)
    assert together[1].is_contiguous(memory_format=torch.channels_last)


def _conv_and_head() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, bias=False), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )


def test_a_filter_step_moves_lr_times_the_norm_along_the_orthogonalized_gradient_then_keeps_the_norm():
    model = _conv_and_head()
    conv = model[0].weight
    opt = create_optimizer("muon", model, OptimSettings(lr=0.5, momentum=0.9, weight_decay=0.0, muon_lr=0.1))
    before = conv.detach().clone()
    torch.manual_seed(1)
    model(torch.randn(8, 2, 6, 6)).logsumexp(1).sum().backward()
    grad = conv.grad.clone()
    opt.step()
    # first step: buffer = g, Nesterov direction = g + 0.9 g = 1.9 g, whose orthogonalization is g's
    ortho = orthogonalize((1.9 * grad).reshape(4, -1), opt.param_groups[0]["ns_steps"]).view_as(grad)
    stepped = before - 0.1 * before.norm() * ortho / ortho.norm()
    expected = stepped * before.norm() / stepped.norm()
    assert torch.allclose(conv, expected, atol=1e-6)
    assert conv.norm().item() == pytest.approx(before.norm().item(), rel=1e-6)
    angle = torch.arccos((conv * before).sum() / before.norm() ** 2).item()
    assert angle == pytest.approx(torch.atan(torch.tensor(0.1)).item(), rel=0.05)  # ~lr radians per step


def test_non_filter_parameters_take_torch_nesterov_steps_with_weight_decay():
    def net() -> nn.Sequential:
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))

    model, twin = net(), net()
    muon = create_optimizer("muon", model, OptimSettings(lr=0.5, momentum=0.9, weight_decay=0.01))
    decay = [twin[0].weight, twin[2].weight]
    rest = [twin[0].bias, twin[1].weight, twin[1].bias, twin[2].bias]
    sgd = torch.optim.SGD(
        [{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
        lr=0.5,
        momentum=0.9,
        nesterov=True,
    )
    assert not any(g["orthogonal"] for g in muon.param_groups)
    for step in range(3):
        torch.manual_seed(step)
        x = torch.randn(8, 4)
        for net_, opt in ((model, muon), (twin, sgd)):
            opt.zero_grad()
            net_(x).logsumexp(1).sum().backward()
            opt.step()
    for mine, torchs in zip(model.parameters(), twin.parameters()):
        assert torch.allclose(mine, torchs, atol=1e-7)


def test_split_filters_puts_4d_weights_in_an_orthogonal_group_at_muon_lr_without_decay():
    model = _conv_and_head()
    groups = [
        {
            "params": [model[0].weight, model[4].weight],
            "weight_decay": 5e-4,
            "lr": 0.2,
        },  # a discriminative group at lr / 4
        {"params": [model[1].weight, model[1].bias, model[4].bias], "weight_decay": 0.0},
    ]
    out = split_filters(groups, lr=0.8, muon_lr=0.04)
    assert [(len(g["params"]), g.get("orthogonal", False), g["weight_decay"], g.get("lr")) for g in out] == [
        (1, False, 5e-4, 0.2),
        (3, False, 0.0, None),
        (1, True, 0.0, pytest.approx(0.01)),  # 0.04 * 0.2 / 0.8, after the others: param_groups[0] keeps an SGD lr
    ]
    opt = Muon(out, lr=0.8)
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.8, pytest.approx(0.01)]


def test_muon_state_round_trips_through_a_weights_only_checkpoint():
    model = _conv_and_head()
    opt = create_optimizer("muon", model, OptimSettings())
    model(torch.randn(4, 2, 6, 6)).sum().backward()
    opt.step()
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    fresh = create_optimizer("muon", model, OptimSettings())
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(fresh.state[model[0].weight]["norm"], opt.state[model[0].weight]["norm"])
    assert torch.equal(fresh.state[model[0].weight]["momentum_buffer"], opt.state[model[0].weight]["momentum_buffer"])


def test_muon_lr_and_momentum_are_checked():
    with pytest.raises(
        ConfigError, match=r"muon_lr is a relative step per update and must be > 0 \(e.g. 0.05\), got 0.0"
    ):
        TrainConfig(optimizer="muon", muon_lr=0.0).validate()
    with pytest.raises(ConfigError, match=r"optimizer muon needs momentum > 0 \(got 0\)"):
        TrainConfig(optimizer="muon", momentum=0.0).validate()


def test_muon_lr_with_another_optimizer_is_reported_unused(caplog):
    with caplog.at_level(logging.WARNING, logger="convcoach"):
        warn_unused(TrainConfig(optimizer="nesterov", muon_lr=0.1))
    assert "ignoring muon_lr 0.1: only optimizer muon reads it" in caplog.text


def test_a_resnet_trains_with_muon_to_high_accuracy_and_keeps_its_filter_norms(blobs_npz, tmp_path, single_thread):
    config = small_config(
        blobs_npz, tmp_path / "run", model="resnet", depth=8, width=8, epochs=6, optimizer="muon", lr=0.2, muon_lr=0.05
    )
    trainer = Trainer(config)
    norms = {name: p.norm().item() for name, p in trainer.model.named_parameters() if p.ndim == 4}
    summary = trainer.fit()
    assert summary["status"] == "completed"
    assert summary["test_accuracy"] >= 0.9
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model_state"]
    for name, norm in norms.items():
        assert state[name].norm().item() == pytest.approx(norm, rel=1e-4), name
