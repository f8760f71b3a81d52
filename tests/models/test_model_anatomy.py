"""Every registered model declares its transfer anatomy when it registers; transfer finds each one's stages."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from convcoach.errors import ConfigError
from convcoach.models import MODELS, ModelRegistry, create_model
from convcoach.models.stages import ANATOMIES, Anatomy, split_stages
from convcoach.transfer.heads import freeze, replace_head

# small options per model (a model missing here is built with its defaults)
OPTIONS = {
    "resnet": {"width": 4},
    "cnn": {"depth": 2, "width": 4, "fc_width": 8},
    "vgg": {"depth": 6, "width": 4},
    "mlp": {"depth": 2, "width": 8},
    "truncated": {"base": "resnet", "base_options": {"width": 4}, "stage": "stage2"},
}


def test_every_registered_model_declares_an_anatomy_or_none():
    undeclared = [name for name in MODELS.names() if name not in MODELS.anatomies]
    assert undeclared == [], f"register these with anatomy=... (or anatomy=None): {undeclared}"


@pytest.mark.parametrize("name", MODELS.names())
def test_transfer_finds_the_stages_of_every_registered_model(name):
    declared = MODELS.anatomies[name]
    if declared is None:
        pytest.skip(f"{name} declares no anatomy")
    module, anatomy_of = declared
    torch.manual_seed(0)
    size = max(16, MODELS.min_sizes[name])  # AlexNet takes 63x63 and up, VGG-BN 32x32
    model = create_model(name, (1, size, size), 5, **OPTIONS.get(name, {})).eval()
    assert isinstance(model, module)
    assert ANATOMIES[module] is anatomy_of  # the lookup table split_stages reads, filled by registration
    anatomy = split_stages(model)
    x = torch.randn(3, 1, size, size)
    assert torch.allclose(anatomy.head(anatomy.run(x)), model(x), atol=1e-5)
    head = replace_head(anatomy, 3)
    assert split_stages(model).head is head and model(x).shape == (3, 3)
    freeze(model, anatomy, anatomy.names[-1:])
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in head.parameters()} <= trainable


def test_a_model_registers_with_its_anatomy_in_one_call():
    class Tiny(nn.Module):
        def __init__(self, in_shape, num_classes):
            super().__init__()
            self.body = nn.Conv2d(in_shape[0], 4, 3, padding=1)
            self.fc = nn.Linear(4, num_classes)

        def forward(self, x):
            return self.fc(self.body(x).mean(dim=(2, 3)))

    def tiny_anatomy(model: Tiny) -> Anatomy:
        return Anatomy([("stage1", [model.body])], [nn.AdaptiveAvgPool2d(1), nn.Flatten()], (model, "fc"))

    registry = ModelRegistry()
    registry.register("tiny", module=Tiny, anatomy=tiny_anatomy)(Tiny)
    registry.register("opaque", anatomy=None)(lambda in_shape, num_classes: nn.Linear(3, num_classes))
    try:
        assert registry.anatomies == {"tiny": (Tiny, tiny_anatomy), "opaque": None}
        model = registry.get("tiny")((1, 8, 8), 2)
        assert split_stages(model).names == ["stage1"]
    finally:
        del ANATOMIES[Tiny]
    with pytest.raises(ConfigError, match="cannot split a Tiny"):
        split_stages(model)


def test_an_anatomy_needs_its_module_class():
    with pytest.raises(TypeError, match="module="):
        ModelRegistry().register("x", anatomy=lambda model: None)
