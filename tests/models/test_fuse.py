"""BatchNorm folding: the fold's formula, outputs equal to the unfused model, exports that reload."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from convcoach.models import create_model
from convcoach.models.fuse import count_batchnorms, fold_bn, fuse_bn


def trained_like(model: nn.Module, shape: tuple[int, int, int], seed: int = 0) -> nn.Module:
    """Give every BN non-trivial running statistics and affine parameters, as training would."""
    generator = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(16, *shape, generator=generator) * 2 + 0.5)
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0, 0.5, generator=generator)
    return model.eval()


def test_fold_matches_the_formula_and_torchs_fusion():
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4)
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.normal_()
    conv.eval()
    bn.eval()
    reference = fuse_conv_bn_eval(conv, bn)
    original_w, original_b = conv.weight.detach().clone(), conv.bias.detach().clone()
    fold_bn(conv, bn)
    scale = bn.weight / (bn.running_var + bn.eps).sqrt()
    assert torch.allclose(conv.weight, original_w * scale.view(-1, 1, 1, 1))  # W' = W gamma / sqrt(var + eps)
    assert torch.allclose(
        conv.bias, (original_b - bn.running_mean) * scale + bn.bias
    )  # b' = (b - mu) gamma / sqrt(var + eps) + beta
    assert torch.allclose(conv.weight, reference.weight, atol=1e-6) and torch.allclose(
        conv.bias, reference.bias, atol=1e-6
    )


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("resnet", {}),
        ("resnet", {"depth": 14, "shortcut": "identity"}),
        ("resnet", {"downsample": "conv_pool"}),
        ("resnet", {"downsample": "pool", "stem": "unshuffle"}),
        ("cnn", {}),
        ("vgg", {}),
        ("mlp", {"norm_spec": "batch", "depth": 2}),
    ],
)
def test_folding_preserves_outputs_and_removes_every_batchnorm(name, options):
    shape = (1, 8, 8)
    model = trained_like(create_model(name, shape, 5, width=8, **options), shape)
    fused = fuse_bn(model)
    assert count_batchnorms(model) > 0 and count_batchnorms(fused) == 0
    x = torch.randn(32, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (model(x) - fused(x)).abs().max().item() < 1e-4
    assert count_batchnorms(model) > 0  # the original is untouched (fuse_bn copies)


def test_a_batchnorm_after_a_shared_layer_is_left_alone():
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bn(self.conv(x)) + self.conv(x)

    model = trained_like(Shared(), (2, 4, 4))
    fused = fuse_bn(model)
    assert count_batchnorms(fused) == 1
    x = torch.randn(3, 2, 4, 4)
    assert torch.allclose(model(x), fused(x))


def test_bn_after_conv_and_max_pool_folds_only_when_every_scale_is_positive():
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(3), nn.ReLU()
    ).eval()
    with torch.no_grad():
        model[2].running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        model[2].running_var.copy_(torch.tensor([4.0, 0.25, 1.0]))
        model[2].weight.copy_(torch.tensor([2.0, 0.5, 1.5]))
    x = torch.randn(4, 1, 8, 8)
    fused = fuse_bn(model)
    assert count_batchnorms(fused) == 0
    assert (fused(x) - model(x)).abs().max() < 1e-5
    with torch.no_grad():
        model[2].weight[1] = -0.5  # max(a*x) != a*max(x) for a < 0: must stay a BatchNorm
    fused = fuse_bn(model)
    assert count_batchnorms(fused) == 1
    assert (fused(x) - model(x)).abs().max() < 1e-5
