"""Input mismatches between a pretrained network and new data: channel count (first-layer weights) and image size."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..data import Normalizer
from ..errors import ConfigError


def _first_layer(model: nn.Module) -> tuple[nn.Module, str, nn.Module, int]:
    """(parent, attribute, layer, blocks) of the first Conv2d or Linear in forward order; `blocks` is
    how many input channels each image channel became in a space-to-depth (PixelUnshuffle) before it."""
    blocks = 1
    for path, layer in model.named_modules():  # depth-first, in registration (= forward) order
        if isinstance(layer, nn.PixelUnshuffle):
            blocks *= layer.downscale_factor**2
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            parent_path, _, name = path.rpartition(".")
            return model.get_submodule(parent_path), name, layer, blocks
    raise ConfigError(f"{type(model).__name__} has no conv or linear layer to adapt")


def convert_weight(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """(out, C, ...) weights for `channels` inputs giving the same output on a gray image.

    RGB -> gray: sum over C, since a gray image is three equal channels: sum_c W_c x = (sum_c W_c) x.
    gray -> RGB: replicate and divide by the new count, so three equal channels give W x back."""
    old = weight.shape[1]
    if old == channels:
        return weight.clone()
    if channels == 1:
        return weight.sum(dim=1, keepdim=True)
    if old == 1:
        return weight.repeat(1, channels, *([1] * (weight.dim() - 2))) / channels
    raise ConfigError(f"cannot convert a {old}-channel first layer to {channels} channels (only 1 <-> N)")


@torch.no_grad()
def convert_input_channels(model: nn.Module, channels: int, image_size: tuple[int, int]) -> str | None:
    """Rebuild the first layer for `channels` inputs in place; returns what was done (None: nothing to do)."""
    parent, name, layer, blocks = _first_layer(model)
    if isinstance(layer, nn.Conv2d):
        old_channels = layer.in_channels // blocks
        if old_channels == channels:
            return None
        new = nn.Conv2d(
            channels * blocks,
            layer.out_channels,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            layer.dilation,
            layer.groups,
            layer.bias is not None,
            layer.padding_mode,
        )
        # PixelUnshuffle orders its outputs channel-major (c * blocks + offset): convert over c per offset
        weight = layer.weight.unflatten(1, (old_channels, blocks))
        new.weight.copy_(convert_weight(weight, channels).flatten(1, 2))
    else:  # a flattening model: the first Linear's inputs are C*H*W pixels
        pixels = image_size[0] * image_size[1]
        old_channels = layer.in_features // pixels
        if old_channels == channels:
            return None
        weight = layer.weight.view(layer.out_features, old_channels, pixels)
        new = nn.Linear(channels * pixels, layer.out_features, layer.bias is not None)
        new.weight.copy_(convert_weight(weight, channels).reshape(layer.out_features, -1))
    if layer.bias is not None:
        new.bias.copy_(layer.bias)
    setattr(parent, name, new.to(layer.weight.device))
    how = "summed over RGB" if channels == 1 else f"replicated and divided by {channels}"
    return (
        f"converted the first layer's weights from {old_channels} to {channels} input channel(s) ({how}); "
        "the data is unchanged"
    )


def convert_normalizer(normalizer: Normalizer, channels: int) -> Normalizer:
    """The pretrained normalizer for `channels` inputs: gray stats replicated, or RGB stats averaged.

    RGB -> gray is exact only when the RGB channels were normalized alike."""
    if len(normalizer.mean) == channels:
        return normalizer
    if len(normalizer.mean) == 1:
        return Normalizer(normalizer.mean * channels, normalizer.std * channels)
    return Normalizer(
        [sum(normalizer.mean) / len(normalizer.mean)] * channels, [sum(normalizer.std) / len(normalizer.std)] * channels
    )


@torch.no_grad()
def check_image_size(
    model: nn.Module, pretrained_shape: tuple[int, int, int], shape: tuple[int, int, int], what: str
) -> None:
    """One forward pass at the new size; a network without adaptive pooling fails with the size it needs."""
    if tuple(shape[1:]) == tuple(pretrained_shape[1:]):
        return
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        model(torch.zeros(2, *shape, device=device))
    except RuntimeError:
        size = f"{pretrained_shape[1]}x{pretrained_shape[2]}"
        raise ConfigError(
            f"{what} takes {size} images, not {shape[1]}x{shape[2]}: "
            f"resize the data with --image-size {pretrained_shape[1]}"
            " (or use a model with adaptive pooling: resnet, cnn, vgg)"
        ) from None
    finally:
        model.train(was_training)
