"""What a model will cost before it exists: parameters and activations per image, from a build and one
forward pass on PyTorch's meta device (shapes only, no memory), so an option that asks for terabytes is
a one-line error instead of an out-of-memory kill."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError

MAX_PARAMETERS = 1_000_000_000  # 4 GiB of fp32 weights, 16 GiB to train with gradients and two optimizer states
UNCOUNTABLE = sys.maxsize
TRAINING_COPIES = 4  # weights, gradients and up to two optimizer states per parameter
SAVED_FOR_BACKWARD = 2  # each layer's output is kept for the backward pass and gets a gradient of its size


@dataclass(frozen=True)
class Footprint:
    parameters: int
    activations_per_image: int  # elements output by the model's leaf modules for one image

    def training_bytes(self, batch_size: int, element_bytes: int = 4) -> int:
        """About what one training step holds: parameters with their state, and the batch's activations."""
        weights = self.parameters * TRAINING_COPIES
        return element_bytes * (weights + SAVED_FOR_BACKWARD * batch_size * self.activations_per_image)


def footprint(builder: Callable[..., nn.Module], in_shape: tuple[int, int, int], *args: Any, **kw: Any) -> Footprint:
    """Build on the meta device and count; the caller's real build reports options that cannot work."""
    with torch.device("meta"):
        try:
            model = builder(tuple(in_shape), *args, **kw)
        except RuntimeError as exc:
            if "overflow" in str(exc):  # a layer larger than a tensor can be (width doubled over many stages)
                return Footprint(UNCOUNTABLE, 0)
            raise
        parameters = sum(p.numel() for p in model.parameters())
        if parameters > MAX_PARAMETERS:
            return Footprint(parameters, 0)
        counted = [0]

        def count(module: nn.Module, inputs: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor):
                counted[0] += output[0].numel()

        leaves = [m for m in model.modules() if not list(m.children())]
        hooks = [m.register_forward_hook(count) for m in leaves]
        try:
            with torch.no_grad():
                model.eval()(torch.zeros(1, *in_shape))
        finally:
            for hook in hooks:
                hook.remove()
    return Footprint(parameters, counted[0])


def check_parameters(what: str, found: Footprint) -> None:
    if found.parameters == UNCOUNTABLE:
        raise ConfigError(f"{what} has a layer larger than a tensor can hold: a smaller --width or --depth")
    if found.parameters > MAX_PARAMETERS:
        raise ConfigError(
            f"{what} has {found.parameters:,} parameters ({found.parameters * 4 / 2**30:.1f} GiB in fp32); "
            f"convcoach builds at most {MAX_PARAMETERS:,}: a smaller --width or --depth"
        )


def available_bytes(device: torch.device) -> int | None:
    """Free memory where training runs: the GPU's, or the machine's MemAvailable (None where unknown)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_fits(what: str, found: Footprint, batch_size: int, device: torch.device) -> None:
    """A ConfigError when one training step needs more memory than the device has free."""
    check_parameters(what, found)
    need, free = found.training_bytes(batch_size), available_bytes(device)
    if free is None or need <= free:
        return
    gib = 2**30
    raise ConfigError(
        f"{what} needs about {need / gib:.1f} GiB to train at batch_size {batch_size} "
        f"({found.parameters:,} parameters, {found.activations_per_image:,} activations per image); "
        f"{device.type} has {free / gib:.1f} GiB free: a smaller --batch-size, --width, --depth or --image-size"
    )
