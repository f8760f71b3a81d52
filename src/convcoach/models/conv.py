"""A 3x3 conv layer whose bf16 weight gradient on CPU comes from one matmul where oneDNN's is slow.

On a CPU with native bf16 (AMX), oneDNN computes a 3x3 conv's weight gradient 2-4x slower than its
forward pass when the output map is small (4x4 at batch 256: 8.1 ms against 2.0 ms for 192 channels;
benchmarks/wide_step.py). The same gradient is one matmul: dW[o, (kh, kw, c)] = sum over (n, i, j)
of dY[n, i, j, o] * X[n, i*s + kh, j*s + kw, c], with the nine shifted copies of the padded input
stacked into an (N*H*W, 9*C) matrix (3.6 ms there). `Conv2d` takes that path only while training on
a CPU in bf16 with an output of at most `SMALL_MAP` positions and `WIDE` channels or more; everywhere
else (eval, export, fp32, CUDA, torch.compile, fx tracing) it is nn.Conv2d, with the same parameters
and state_dict.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

SMALL_MAP = 16  # output positions (H * W) at or below which the matmul path is faster (4x4 maps; 7x7 is not)
# and output channels from which it pays in a whole step: ResNet-14 at width 48 (192 channels at 4x4)
# steps 14% faster with Muon's bf16 iteration, width 32 (128) 5%; the default's width 16 (64) gains nothing
WIDE = 128


class Conv2d(nn.Conv2d):
    """nn.Conv2d; a 3x3, padding-1, ungrouped layer trains its small bf16 maps on CPU through
    `ShiftedConv3x3` (same values up to bf16 rounding, measured faster)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if _takes_matmul_path(self, input):
            weight = self.weight.to(torch.bfloat16)  # what autocast would cast; the grad flows back in fp32
            bias = None if self.bias is None else self.bias.to(torch.bfloat16)
            with torch.autocast("cpu", enabled=False):
                return ShiftedConv3x3.apply(input.to(torch.bfloat16), weight, bias, self.stride[0])
        return super().forward(input)


def _takes_matmul_path(conv: nn.Conv2d, input: torch.Tensor) -> bool:
    if isinstance(input, torch.fx.Proxy) or input.device.type != "cpu" or _compiling():
        return False
    if not (conv.training and torch.is_grad_enabled() and conv.weight.requires_grad and input.dim() == 4):
        return False
    if conv.kernel_size != (3, 3) or conv.padding != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1:
        return False
    if conv.padding_mode != "zeros" or conv.stride[0] != conv.stride[1] or conv.out_channels < WIDE:
        return False
    if not (_autocast_bf16() or (input.dtype == torch.bfloat16 and conv.weight.dtype == torch.bfloat16)):
        return False
    stride = conv.stride[0]
    height, width = ((size - 1) // stride + 1 for size in input.shape[-2:])
    return height * width <= SMALL_MAP


def _compiling() -> bool:
    is_compiling = getattr(torch.compiler, "is_compiling", None)  # torch >= 2.3
    return bool(is_compiling and is_compiling())


def _autocast_bf16() -> bool:
    """CPU autocast is on in bf16 (torch >= 2.4 takes the device type; 2.2-2.3 have the cpu_ functions)."""
    try:
        return torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    except (AttributeError, TypeError):
        return torch.is_autocast_cpu_enabled() and torch.get_autocast_cpu_dtype() == torch.bfloat16


class ShiftedConv3x3(torch.autograd.Function):
    """conv2d(x, w, b, stride, padding=1) whose backward takes dX from oneDNN and dW from one matmul."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.stride = stride
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, stride, 1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        stride = ctx.stride
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight, None, [stride] * 2, [1, 1], [1, 1], False, [0, 0], 1, [True, False, False]
            )[0]
        if ctx.needs_input_grad[1]:
            grad_w = weight_grad(x, grad, stride)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None


def weight_grad(x: torch.Tensor, grad: torch.Tensor, stride: int) -> torch.Tensor:
    """dW of a 3x3, padding-1 conv: the (O, N*H*W) output gradient times the (N*H*W, 9*C) matrix of
    the padded input's nine shifted, strided copies (channels last), reshaped to (O, C, 3, 3)."""
    out_channels, (height, width), channels = grad.shape[1], grad.shape[-2:], x.shape[1]
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)  # N, H+2, W+2, C
    rows = stride * height
    cols = stride * width
    shifted = [padded[:, kh : kh + rows : stride, kw : kw + cols : stride, :] for kh in range(3) for kw in range(3)]
    patches = torch.stack(shifted, dim=3).reshape(-1, 9 * channels)
    product = grad.permute(0, 2, 3, 1).reshape(-1, out_channels).t() @ patches  # O, 9C in (kh, kw, c) order
    return product.view(out_channels, 3, 3, channels).permute(0, 3, 1, 2)
