"""The ImageNet architectures match torchvision's definitions: parameter counts (torchvision's
published model cards) and state-dict key names and shapes, so its ImageNet weights load unchanged."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from convcoach.models.imagenet import IMAGENET_ARCHITECTURES, imagenet_architecture, make_divisible

PARAMETERS = {  # torchvision's model cards
    "alexnet": 61_100_840,
    "vgg11_bn": 132_868_840,
    "vgg16_bn": 138_365_992,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "mobilenet_v3_large": 5_483_032,
}

KEYS = {  # a few state-dict entries per architecture, as torchvision names and shapes them
    "alexnet": {
        "features.10.weight": (256, 256, 3, 3),
        "classifier.1.weight": (4096, 9216),
        "classifier.6.bias": (1000,),
    },
    "vgg16_bn": {
        "features.0.weight": (64, 3, 3, 3),
        "features.1.running_mean": (64,),
        "features.40.weight": (512, 512, 3, 3),
        "features.41.num_batches_tracked": (),
        "classifier.6.weight": (1000, 4096),
    },
    "resnet18": {
        "conv1.weight": (64, 3, 7, 7),
        "layer1.0.conv1.weight": (64, 64, 3, 3),
        "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "layer4.1.bn2.running_var": (512,),
        "fc.weight": (1000, 512),
    },
    "resnet50": {
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer3.5.conv2.weight": (256, 256, 3, 3),
        "layer4.2.conv3.weight": (2048, 512, 1, 1),
        "fc.weight": (1000, 2048),
    },
    "mobilenet_v3_large": {
        "features.0.0.weight": (16, 3, 3, 3),
        "features.1.block.0.0.weight": (16, 1, 3, 3),
        "features.4.block.2.fc1.weight": (24, 72, 1, 1),
        "features.4.block.3.0.weight": (40, 72, 1, 1),
        "features.16.0.weight": (960, 160, 1, 1),
        "classifier.0.weight": (1280, 960),
        "classifier.3.weight": (1000, 1280),
    },
}


@pytest.mark.parametrize("name", list(PARAMETERS))
def test_parameter_count_is_torchvisions(name):
    model = imagenet_architecture(name)
    assert sum(p.numel() for p in model.parameters()) == PARAMETERS[name]


@pytest.mark.parametrize("name", list(KEYS))
def test_state_dict_keys_and_shapes_are_torchvisions(name):
    state = imagenet_architecture(name).state_dict()
    for key, shape in KEYS[name].items():
        assert tuple(state[key].shape) == shape, key


def test_the_state_dict_round_trips_and_a_224px_batch_gives_one_score_per_class():
    model = imagenet_architecture("resnet18", num_classes=7).eval()
    copy = imagenet_architecture("resnet18", num_classes=7).eval()
    copy.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(model(x), copy(x)) and model(x).shape == (2, 7)


def test_make_divisible_is_the_mobilenet_rule():
    assert [make_divisible(v) for v in (18, 30, 60, 120, 168, 240)] == [24, 32, 64, 120, 168, 240]


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="unknown ImageNet architecture 'resnet101'; known: alexnet"):
        imagenet_architecture("resnet101")
    assert set(IMAGENET_ARCHITECTURES) == set(PARAMETERS)


TORCHVISION = Path(__file__).resolve().parents[2] / ".torchvision"  # `make torchvision-defs` unpacks its wheel here
STUBBED = (
    "_deform_conv2d_backward _ps_roi_align_backward _ps_roi_pool_backward _roi_align_backward _roi_pool_backward "
    "deform_conv2d nms ps_roi_align ps_roi_pool qnms qroi_align roi_align roi_pool"
).split()
_stubs: list = []  # the Library that defines the stubs must outlive the import


def _torchvision_models():
    """torchvision's model definitions, imported with its C++ detection operators stubbed: the only
    torchvision build for this torch needs CUDA libraries, and the classifiers never call those ops."""
    if "torchvision" not in sys.modules:
        if not (TORCHVISION / "torchvision").is_dir():
            pytest.skip("torchvision's definitions are not unpacked (make torchvision-defs)")
        sys.path.insert(0, str(TORCHVISION))
        library = torch.library.Library("torchvision", "DEF")
        for op in STUBBED:
            library.define(f"{op}(Tensor x) -> Tensor")
        _stubs.append(library)
    import torchvision.models

    return torchvision.models


@pytest.mark.parametrize("name", list(PARAMETERS))
def test_torchvisions_model_loads_our_state_dict_and_gives_the_same_scores(name):
    models = _torchvision_models()
    ours = imagenet_architecture(name).eval()
    theirs = getattr(models, name)().eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)  # every key and shape the same
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5, rtol=1e-4)


def test_imagenet_models_are_registered_with_a_minimum_size_and_gray_input():
    from convcoach.errors import ConfigError
    from convcoach.models import create_model

    with pytest.raises(
        ConfigError, match=r"model 'alexnet' takes images of at least 63x63, not 32x32: --image-size 63"
    ):
        create_model("alexnet", (3, 32, 32), 10)
    gray = create_model("resnet18", (1, 32, 32), 4)
    assert gray.conv1.in_channels == 1 and gray.fc.out_features == 4
    # everything but the first conv and the head keeps torchvision's shapes
    assert sum(p.numel() for p in gray.parameters()) == 11_689_512 - 2 * 64 * 49 - 996 * 513


def test_each_registered_imagenet_model_declares_the_class_its_builder_returns():
    from convcoach.models import MODELS, create_model

    for name in IMAGENET_ARCHITECTURES:
        module, _ = MODELS.anatomies[name]
        size = max(64, MODELS.min_sizes[name])
        assert type(create_model(name, (3, size, size), 2)) is module, name
