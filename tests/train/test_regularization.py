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
from convcoach.models.spec import build_model, model_spec
from convcoach.train.constraints import apply_max_norm
from convcoach.train.mixing import MixBatches, cutmix, mixup, soft_targets


def _configured_model(name: str, shape: tuple[int, int, int] = (1, 8, 8), classes: int = 3, **keys) -> nn.Module:
    """A registry model built the way `convcoach train` builds it from these config keys (--dropout, --norm, ...)."""
    torch.manual_seed(0)
    config = TrainConfig(model=name, **keys)
    return build_model(model_spec(config, shape, classes))


def _classifier(model: nn.Module) -> nn.Linear:
    return model.fc if hasattr(model, "fc") else model[-1]


@pytest.mark.parametrize(
    ("name", "size"),
    [("mlp", {"depth": 1, "width": 256}), ("cnn", {"depth": 1, "width": 8}), ("resnet", {"depth": 8, "width": 8})],
)
def test_dropout_key_gives_inverted_dropout_before_the_classifier(name, size):
    # one image repeated 2000 times, no norm (a batch of copies has no batch variance): every row sees the
    # same features, so train mode differs from eval only by the dropout mask on the classifier's input
    model = _configured_model(name, dropout=0.4, norm="none", **size)
    features: list[torch.Tensor] = []
    _classifier(model).register_forward_pre_hook(lambda module, inputs: features.append(inputs[0].detach().clone()))
    x = torch.randn(1, 1, 8, 8).expand(2000, 1, 8, 8).contiguous()
    with torch.no_grad():
        model.eval()
        eval_logits, again = model(x), model(x)
        eval_features = features[0]
        model.train()
        train_logits = model(x)
        train_features = features[-1]
    # eval: deterministic, and no unit is dropped (every copy gets the same features and scores)
    assert torch.equal(eval_logits, again) and torch.equal(eval_logits, eval_logits[:1].expand_as(eval_logits))
    live = eval_features > 0
    assert live.float().mean().item() > 0.3
    assert torch.count_nonzero(train_features[~live]) == 0
    kept = train_features[live] != 0
    # training: 40% of the units dropped, the survivors scaled by 1 / (1 - 0.4)
    assert 1 - kept.float().mean().item() == pytest.approx(0.4, abs=0.01)
    assert torch.allclose(train_features[live][kept], eval_features[live][kept] / 0.6, rtol=1e-5, atol=1e-7)
    # so the expected activation, and the expected scores, equal eval mode's
    assert train_features.mean().item() == pytest.approx(eval_features.mean().item(), rel=0.02)
    assert torch.allclose(train_logits.mean(dim=0), eval_logits[0], atol=0.01)
    assert not torch.equal(train_logits[0], train_logits[1])  # a fresh mask per sample


def test_norm_batch_uses_batch_statistics_in_training_and_running_ones_in_eval():
    model = _configured_model(
        "cnn", shape=(3, 8, 8), classes=4, depth=1, width=4, norm="batch", model_options={"fc_width": 8}
    )
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 2 and sum(isinstance(m, nn.BatchNorm1d) for m in model.modules()) == 1
    bn = norms[0]  # after the first conv
    seen: dict[str, torch.Tensor] = {}
    bn.register_forward_hook(
        lambda module, inputs, output: seen.update(x=inputs[0].detach().clone(), y=output.detach().clone())
    )
    x = torch.randn(16, 3, 8, 8) * 4 + 2
    with torch.no_grad():
        full = model(x)  # training: normalized with this batch's mean and (biased) variance
        batch_in, batch_out = seen["x"], seen["y"]
        assert batch_out.mean(dim=(0, 2, 3)).abs().max().item() < 1e-5
        assert batch_out.var(dim=(0, 2, 3), unbiased=False).tolist() == pytest.approx([1.0] * 4, abs=1e-3)
        # running statistics move 10% of the way (from 0 and 1) towards the batch's
        assert torch.allclose(bn.running_mean, 0.1 * batch_in.mean(dim=(0, 2, 3)), atol=1e-5)
        assert torch.allclose(bn.running_var, 0.9 + 0.1 * batch_in.var(dim=(0, 2, 3)), atol=1e-4)
        assert not torch.allclose(model(x[:2]), full[:2], atol=1e-3)  # a sample's output depends on its batch
        model.eval()
        running_mean, running_var = bn.running_mean.clone(), bn.running_var.clone()
        out = model(x)
        expected = (seen["x"] - running_mean.view(1, 4, 1, 1)) / (running_var.view(1, 4, 1, 1) + bn.eps).sqrt()
        assert torch.allclose(seen["y"], expected, atol=1e-5)
        assert torch.equal(bn.running_mean, running_mean)  # eval leaves the statistics alone
        assert torch.allclose(model(x[:1]), out[:1], atol=1e-5)  # one sample alone gives the same answer


def test_dropconnect_drops_weights_with_the_expected_mean_in_training():
    torch.manual_seed(0)
    layer = DropConnectLinear(400, 100, bias=False, p=0.5)
    nn.init.constant_(layer.weight, 0.01)
    x = torch.ones(1, 400)
    outputs = torch.stack([layer(x)[0] for _ in range(40)])  # 40 passes x 100 units
    assert outputs.mean().item() == pytest.approx(4.0, rel=0.01)  # E = sum of all weights = 400 * 0.01
    # each output is (0.01 / 0.5) * Binomial(400, 0.5): std 0.02 * sqrt(400 * 0.5 * 0.5) = 0.2.
    # Taken over the 40 passes of each unit, so a mask drawn once (not per forward pass) would give 0
    assert outputs.std(dim=0).mean().item() == pytest.approx(0.2, rel=0.1)
    assert outputs.std().item() == pytest.approx(0.2, rel=0.05)


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
    torch.save({"MixBatches": mixer.state_dict()}, tmp_path / "c.pt")  # as inside a checkpoint
    restored = MixBatches(mixup_alpha=0.4, seed=99)
    restored.load_state_dict(torch.load(tmp_path / "c.pt", weights_only=True)["MixBatches"])
    assert torch.equal(mixer.mix(x, y)[0], restored.mix(x, y)[0])


def test_stochastic_depth_config_reaches_the_resnet_with_linear_decay(blobs_npz, tmp_path):
    config = small_config(
        blobs_npz, tmp_path / "run", model="resnet", width=4, depth=14, stochastic_depth=0.3, epochs=1
    )
    trainer = Trainer(config)
    drops = [block.drop_prob for block in trainer.model.blocks]
    assert drops == pytest.approx([0.3 * i / 6 for i in range(1, 7)])
    assert trainer.spec["options"]["stochastic_depth"] == 0.3


def test_regularizer_keys_build_their_callbacks_and_ops(blobs_npz, tmp_path):
    config = small_config(
        blobs_npz,
        tmp_path / "run",
        epochs=1,
        monitors=False,
        report=False,
        mixup=0.2,
        cutmix=1.0,
        max_norm=2.0,
        dropconnect=0.3,
        cutout=4,
        input_noise=0.05,
        augment=["hflip", "jitter:0.2"],
    )
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
