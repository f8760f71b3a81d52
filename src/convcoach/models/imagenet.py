"""The ImageNet architectures the lectures discuss, written so that their state dicts match
torchvision's definitions key for key and shape for shape: torchvision's published ImageNet weights
load into them unchanged, without importing torchvision (which this project never requires).
AlexNet, VGG-11/16 with BatchNorm, ResNet-18/34/50 and MobileNetV3-Large (issue 24, first part)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from .stages import Anatomy

# --- AlexNet (Krizhevsky et al. 2012, torchvision's one-GPU variant) ---


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# --- VGG with BatchNorm (Simonyan & Zisserman 2015) ---

VGG_STAGES = {11: [1, 1, 2, 2, 2], 16: [2, 2, 3, 3, 3]}  # 3x3 convs per stage; widths 64-128-256-512-512


class VGG(nn.Module):
    def __init__(self, depth: int = 16, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for width, convs in zip((64, 128, 256, 512, 512), VGG_STAGES[depth]):
            for _ in range(convs):
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
                channels = width
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# --- ResNet (He et al. 2016), torchvision's v1.5: the stride on the 3x3 conv of a bottleneck ---


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


RESNET_LAYERS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], list[int]]] = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
}


class ImageNetResNet(nn.Module):
    def __init__(self, depth: int = 18, num_classes: int = 1000) -> None:
        super().__init__()
        block, counts = RESNET_LAYERS[depth]
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._stage(block, 64, counts[0], 1)
        self.layer2 = self._stage(block, 128, counts[1], 2)
        self.layer3 = self._stage(block, 256, counts[2], 2)
        self.layer4 = self._stage(block, 512, counts[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def _stage(self, block: type[BasicBlock] | type[Bottleneck], planes: int, count: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        blocks: list[nn.Module] = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        blocks += [block(self.inplanes, planes) for _ in range(1, count)]
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --- MobileNetV3-Large (Howard et al. 2019) ---


def make_divisible(value: float, divisor: int = 8) -> int:
    """The nearest multiple of `divisor`, never more than 10% below `value` (the MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn_act(
    inputs: int, outputs: int, kernel: int, stride: int = 1, groups: int = 1, activation: type[nn.Module] | None = None
) -> nn.Sequential:
    """Conv (no bias), BatchNorm (eps 1e-3, momentum 0.01), optional activation: torchvision's key layout."""
    layers: list[nn.Module] = [
        nn.Conv2d(inputs, outputs, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(outputs, eps=0.001, momentum=0.01),
    ]
    if activation is not None:
        layers.append(activation(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))


class InvertedResidual(nn.Module):
    def __init__(self, inputs: int, kernel: int, expanded: int, outputs: int, se: bool, hard: bool, stride: int):
        super().__init__()
        activation = nn.Hardswish if hard else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != inputs:
            layers.append(conv_bn_act(inputs, expanded, 1, activation=activation))
        layers.append(conv_bn_act(expanded, expanded, kernel, stride, groups=expanded, activation=activation))
        if se:
            layers.append(SqueezeExcitation(expanded, make_divisible(expanded // 4)))
        layers.append(conv_bn_act(expanded, outputs, 1))
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and inputs == outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.use_residual else out


# (input, kernel, expanded, output, squeeze-excite, hardswish, stride): torchvision's table for -Large
MOBILENET_V3_LARGE = [
    (16, 3, 16, 16, False, False, 1),
    (16, 3, 64, 24, False, False, 2),
    (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2),
    (40, 5, 120, 40, True, False, 1),
    (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2),
    (80, 3, 200, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 480, 112, True, True, 1),
    (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2),
    (160, 5, 960, 160, True, True, 1),
    (160, 5, 960, 160, True, True, 1),
]


class MobileNetV3(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.2, last_channel: int = 1280) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn_act(3, 16, 3, 2, activation=nn.Hardswish)]
        layers += [InvertedResidual(*row) for row in MOBILENET_V3_LARGE]
        layers.append(conv_bn_act(160, 960, 1, activation=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(960, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(dropout, inplace=True),
            nn.Linear(last_channel, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# name -> builder(num_classes): the names torchvision's weights are published under
IMAGENET_ARCHITECTURES: dict[str, Callable[[int], nn.Module]] = {
    "alexnet": lambda classes: AlexNet(classes),
    "vgg11_bn": lambda classes: VGG(11, classes),
    "vgg16_bn": lambda classes: VGG(16, classes),
    "resnet18": lambda classes: ImageNetResNet(18, classes),
    "resnet34": lambda classes: ImageNetResNet(34, classes),
    "resnet50": lambda classes: ImageNetResNet(50, classes),
    "mobilenet_v3_large": lambda classes: MobileNetV3(classes),
}


def imagenet_architecture(name: str, num_classes: int = 1000) -> nn.Module:
    """An ImageNet architecture by torchvision's name (KeyError listing the names when unknown)."""
    if name not in IMAGENET_ARCHITECTURES:
        raise KeyError(f"unknown ImageNet architecture '{name}'; known: {', '.join(IMAGENET_ARCHITECTURES)}")
    return IMAGENET_ARCHITECTURES[name](num_classes)


# --- as registry models: a data set's channel count and classes, transfer anatomies (stages) ---


def imagenet_builder(name: str) -> Callable[..., nn.Module]:
    """The MODELS builder of an ImageNet architecture: `in_shape` sets the first conv's channels."""

    def build(in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
        model = IMAGENET_ARCHITECTURES[name](num_classes)
        if in_shape[0] != 3:  # trained from scratch on gray (pretrained weights come with RGB inputs)
            parent, attribute, conv = first_conv(model)
            setattr(
                parent,
                attribute,
                nn.Conv2d(in_shape[0], conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=False)
                if conv.bias is None
                else nn.Conv2d(in_shape[0], conv.out_channels, conv.kernel_size, conv.stride, conv.padding),
            )
        return model

    build.__name__ = name
    build.__doc__ = f"torchvision's {name} layout (ImageNet weights load into it with --pretrained imagenet)."
    return build


def first_conv(model: nn.Module) -> tuple[nn.Module, str, nn.Conv2d]:
    """(parent, attribute, conv) of the first convolution in forward order."""
    for path, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            parent, _, attribute = path.rpartition(".")
            return model.get_submodule(parent), attribute, module
    raise ValueError(f"{type(model).__name__} has no convolution")


def _split_at_pools(layers: nn.Sequential) -> list[list[nn.Module]]:
    """Conv stages of a features Sequential: each ends at a max pool."""
    stages, current = [], []
    for layer in layers:
        current.append(layer)
        if isinstance(layer, nn.MaxPool2d):
            stages.append(current)
            current = []
    if current:
        stages[-1].extend(current)
    return stages


def _classifier_stages(model: nn.Module, conv_stages: list[tuple[str, list[nn.Module]]]) -> Anatomy:
    """AlexNet, VGG, MobileNetV3: the conv stages, then the classifier's hidden Linears as fc stages
    (the first opens with the pooling and flattening); the last Linear is the head."""
    groups = _fc_groups(list(model.classifier))
    groups[0] = [model.avgpool, nn.Flatten(), *groups[0]]
    stages = conv_stages + [(f"fc{n + 1}", group) for n, group in enumerate(groups[:-1])]
    return Anatomy(stages, groups[-1][:-1], (model.classifier, str(len(model.classifier) - 1)))


def _fc_groups(layers: list[nn.Module]) -> list[list[nn.Module]]:
    """The classifier cut after each Linear's activation: [.., Linear, act], [Dropout, Linear, act], .., [.., head]."""
    groups, current = [], []
    for layer in layers:
        if isinstance(layer, nn.Linear) and any(isinstance(m, nn.Linear) for m in current):
            # close the previous group at its activation; dropouts before this Linear open the next group
            tail = []
            while current and isinstance(current[-1], nn.Dropout):
                tail.insert(0, current.pop())
            groups.append(current)
            current = tail
        current.append(layer)
    groups.append(current)
    return groups


def features_anatomy(model: AlexNet | VGG) -> Anatomy:
    stages = [(f"stage{n + 1}", modules) for n, modules in enumerate(_split_at_pools(model.features))]
    return _classifier_stages(model, stages)


def mobilenet_anatomy(model: MobileNetV3) -> Anatomy:
    """stem, then a stage per resolution: each stride-2 block opens one (the last 1x1 conv ends the last)."""
    layers = list(model.features)
    stages: list[tuple[str, list[nn.Module]]] = [("stem", [layers[0]])]
    for layer, row in zip(layers[1:-1], MOBILENET_V3_LARGE):
        if row[-1] == 2 or len(stages) == 1:
            stages.append((f"stage{len(stages)}", []))
        stages[-1][1].append(layer)
    stages[-1][1].append(layers[-1])
    return _classifier_stages(model, stages)


def imagenet_resnet_anatomy(model: ImageNetResNet) -> Anatomy:
    stem = [model.conv1, model.bn1, model.relu, model.maxpool]
    stages = [("stem", stem)] + [(f"stage{n}", [getattr(model, f"layer{n}")]) for n in range(1, 5)]
    return Anatomy(stages, [model.avgpool, nn.Flatten()], (model, "fc"))
