"""Stochastic regularizers and constraints: dropout and DropConnect, BatchNorm's modes, max-norm,
mixup and cutmix, stochastic depth and the config keys that switch them on."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import small_config

from convcoach import ConfigError, TrainConfig, Trainer
from convcoach.models import create_model
from convcoach.models.dropconnect import DropConnectLinear, apply_dropconnect
from convcoach.train.checkpoint import load_checkpoint, save_checkpoint
from convcoach.train.constraints import apply_max_norm
from convcoach.train.mixing import MixBatches, cutmix, mixup, soft_targets


def test_inverted_dropout_keeps_the_expected_activation_and_is_identity_in_eval():
    torch.manual_seed(0)
    dropout = nn.Dropout(0.4)
    x = torch.ones(2000, 500)
    out = dropout(x)
    assert out.unique().tolist() == pytest.approx([0.0, 1 / 0.6])  # survivors scaled by 1/(1-p) in training
    assert out.mean().item() == pytest.approx(1.0, abs=0.01)
    assert (out == 0).float().mean().item() == pytest.approx(0.4, abs=0.01)
    dropout.eval()
    assert torch.equal(dropout(x), x)


def test_dropconnect_drops_weights_with_the_expected_mean_in_training():
    torch.manual_seed(0)
    layer = DropConnectLinear(400, 100, bias=False, p=0.5)
    nn.init.constant_(layer.weight, 0.01)
    x = torch.ones(1, 400)
    outputs = torch.stack([layer(x) for _ in range(40)])
    assert outputs.mean().item() == pytest.approx(4.0, rel=0.01)  # E = sum of all weights = 400 * 0.01
    assert outputs.std().item() > 0.1  # a fresh weight mask per forward pass


def test_dropconnect_and_dropout_are_deterministic_in_eval_mode():
    torch.manual_seed(0)
    model = apply_dropconnect(create_model("mlp", (1, 4, 4), 3, depth=2, width=32, dropout=0.5), 0.5)
    assert sum(isinstance(m, DropConnectLinear) for m in model.modules()) == 3
    x = torch.randn(8, 1, 4, 4)
    model.eval()
    first, second = model(x), model(x)
    assert torch.equal(first, second)
    plain = create_model("mlp", (1, 4, 4), 3, depth=2, width=32, dropout=0.5).eval()
    plain.load_state_dict(model.state_dict())  # same keys as a plain Linear: checkpoints load either way
    assert torch.allclose(plain(x), first)
    model.train()
    assert not torch.equal(model(x), model(x))


def test_batchnorm_uses_batch_statistics_in_training_and_running_ones_in_eval():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3, momentum=0.1)
    x = torch.randn(16, 3, 5, 5) * 4 + 2
    out = bn(x)  # training: normalized with this batch's mean and variance
    assert out.mean(dim=(0, 2, 3)).abs().max().item() < 1e-5
    assert torch.allclose(bn.running_mean, 0.1 * x.mean(dim=(0, 2, 3)), atol=1e-5)  # (1 - rho) * 0 + rho * mu
    bn.eval()
    expected = (x - bn.running_mean.view(1, 3, 1, 1)) / (bn.running_var.view(1, 3, 1, 1) + bn.eps).sqrt()
    assert torch.allclose(bn(x), expected, atol=1e-5)
    assert torch.allclose(bn(x[:1]), expected[:1], atol=1e-5)  # one sample alone gives the same answer


def test_max_norm_caps_each_units_incoming_weight_vector():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8, 4))
    with torch.no_grad():
        model[0].weight.mul_(10)
        model[2].weight[0].fill_(0.01)  # a small row stays as it is
    small = model[2].weight[0].clone()
    apply_max_norm(model, 1.5)
    assert model[0].weight.flatten(1).norm(dim=1).max().item() == pytest.approx(1.5, rel=1e-4)
    assert model[2].weight.norm(dim=1).max().item() <= 1.5 + 1e-4
    assert torch.equal(model[2].weight[0], small)


def test_mixup_targets_sum_to_one_and_match_the_mixing_weight():
    x = torch.randn(6, 1, 4, 4)
    y = soft_targets(torch.tensor([0, 1, 2, 0, 1, 2]), 3)
    perm = torch.tensor([1, 2, 0, 4, 5, 3])
    mixed_x, mixed_y = mixup(x, y, 0.7, perm)
    assert torch.allclose(mixed_y.sum(dim=1), torch.ones(6))
    assert mixed_y[0].tolist() == pytest.approx([0.7, 0.3, 0.0])
    assert torch.allclose(mixed_x[0], 0.7 * x[0] + 0.3 * x[1])


def test_cutmix_targets_match_the_pasted_area():
    x = torch.zeros(4, 1, 10, 10)
    x[2:] = 1.0
    y = soft_targets(torch.tensor([0, 0, 1, 1]), 2)
    mixed_x, mixed_y, lam = cutmix(x, y, 0.75, torch.tensor([2, 3, 0, 1]), np.random.default_rng(0))
    pasted = mixed_x[0].mean().item()  # sample 0 was all zeros: its mean is the pasted share
    assert pasted == pytest.approx(1 - lam)
    assert mixed_y[0].tolist() == pytest.approx([lam, 1 - lam])
    assert torch.allclose(mixed_y.sum(dim=1), torch.ones(4))


def test_mix_batches_draws_beta_weights_and_checkpoints_its_generator(tmp_path):
    mixer = MixBatches(mixup_alpha=0.4, seed=3)
    x, y = torch.randn(32, 1, 4, 4), soft_targets(torch.randint(0, 5, (32,)), 5)
    weights = []
    for _ in range(200):
        _, mixed = mixer.mix(x, y)
        weights.append(mixer.last_lam)
        assert torch.allclose(mixed.sum(dim=1), torch.ones(32))
    # Beta(0.4, 0.4): mean 1/2, variance 1 / (4 (2 alpha + 1)) = 0.139
    assert np.mean(weights) == pytest.approx(0.5, abs=0.06)
    assert np.var(weights) == pytest.approx(0.139, abs=0.03)
    save_checkpoint({"callbacks": {"MixBatches": mixer.state_dict()}}, tmp_path / "c.pt")
    restored = MixBatches(mixup_alpha=0.4, seed=99)
    restored.load_state_dict(load_checkpoint(tmp_path / "c.pt")["callbacks"]["MixBatches"])
    assert torch.equal(mixer.mix(x, y)[0], restored.mix(x, y)[0])


def test_stochastic_depth_config_reaches_the_resnet_with_linear_decay(blobs_npz, tmp_path):
    config = small_config(blobs_npz, tmp_path / "run", model="resnet", width=4, depth=14, stochastic_depth=0.3, epochs=1)
    trainer = Trainer(config)
    drops = [block.drop_prob for block in trainer.model.blocks]
    assert drops == pytest.approx([0.3 * i / 6 for i in range(1, 7)])
    assert trainer.spec["options"]["stochastic_depth"] == 0.3


def test_regularizer_keys_build_their_callbacks_and_ops(blobs_npz, tmp_path):
    config = small_config(blobs_npz, tmp_path / "run", epochs=1, monitors=False, report=False, mixup=0.2, cutmix=1.0, max_norm=2.0, dropconnect=0.3,
                          cutout=4, input_noise=0.05, augment=["hflip", "jitter:0.2"])
    trainer = Trainer(config)
    names = [type(c).__name__ for c in trainer.callbacks]
    assert "MixBatches" in names and "MaxNorm" in names
    assert trainer.train_loader.augment.specs == ["hflip", "jitter:0.2", "cutout:4", "noise:0.05"]
    assert any(isinstance(m, DropConnectLinear) for m in trainer.model.modules())
    summary = trainer.fit()
    assert summary["status"] == "completed"
    for module in trainer.model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            assert module.weight.flatten(1).norm(dim=1).max().item() <= 2.0 + 1e-4


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("dropconnect", 1.0, "dropconnect must be in [0.0, 0.99], got 1.0"),
        ("stochastic_depth", -0.1, "stochastic_depth must be in [0.0, 0.99], got -0.1"),
        ("max_norm", 0.0, "max_norm must be > 0, got 0.0"),
        ("mixup", -1.0, "mixup must be >= 0, got -1.0"),
        ("cutout", -2, "cutout must be >= 0, got -2"),
    ],
)
def test_bad_regularizer_values_are_errors_naming_the_key(key, value, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        TrainConfig(**{key: value}).validate()
