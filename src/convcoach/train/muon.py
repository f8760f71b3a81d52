"""Muon: orthogonalized momentum for conv filter banks, Nesterov SGD for every other parameter.

Each conv weight (out, in, k, k) is read as an out x (in*k*k) matrix; its Nesterov momentum is
replaced by the nearest semi-orthogonal matrix (all singular values ~1, by a quintic
Newton-Schulz iteration; Jordan et al. 2024, "Muon"), so every direction of the filter bank moves
at the same rate. The bank's norm is held at its initial value, which a BatchNorm after the conv
makes free to fix (the layer is scale-invariant), so `lr` of those groups is the relative step
||dW|| / ||W|| per update (an angle, in radians). Biases, norm parameters and linear layers take
ordinary Nesterov SGD steps with weight decay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.optim.sgd import sgd

from ..precision import has_native_bf16

# quintic Newton-Schulz coefficients that push singular values in (0, 1] quickly towards ~0.7-1.2
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
# filter matrices (out x in*k*k) of this many entries or more iterate in bf16 where it is native: on an
# AMX Xeon a stack of three 192 x 1728 takes 3.3 ms instead of 11.0 and of 96 x 864 0.9 instead of 1.5,
# while at 64 x 576 (the default net's widest) the two are even
BF16_FROM = 65536


def orthogonalize(
    matrix: torch.Tensor, steps: int = 5, eps: float = 1e-7, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Approximately U V^T for matrix = U S V^T (singular values land in ~[0.7, 1.2]), iterated in
    `dtype` and returned in fp32; a 3-D input is a batch of matrices, each orthogonalized on its own in
    the same few matmuls."""
    a, b, c = NS_COEFFICIENTS
    x = matrix.float()
    # spectral norm <= Frobenius norm = 1: inside the iteration's basin
    x = (x / (torch.linalg.vector_norm(x, dim=(-2, -1), keepdim=True) + eps)).to(dtype)
    wide = x.shape[-2] <= x.shape[-1]
    if not wide:
        x = x.mT  # iterate on the small Gram matrix
    # fused multiply-adds: 3 kernels per iteration instead of 8 (the filter matrices are small, so the
    # step's cost is mostly dispatch)
    batched = x.dim() == 3
    x = x if batched else x.unsqueeze(0)
    for _ in range(steps):
        gram = torch.bmm(x, x.mT)
        poly = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)  # b G + c G^2
        x = torch.baddbmm(x, poly, x, beta=a)  # a X + (b G + c G^2) X
    x = (x if batched else x.squeeze(0)).float()
    return x if wide else x.mT


def iteration_dtype(matrix: torch.Tensor) -> torch.dtype:
    """bf16 for a filter matrix of at least `BF16_FROM` entries where the device has native bf16
    matmuls (the Newton-Schulz matmuls run 3-4x faster there, with the same singular values to ~0.01;
    Jordan et al. iterate in bf16 too); fp32 for smaller matrices (bf16 is slower there) and elsewhere."""
    native = matrix[0].numel() >= BF16_FROM and has_native_bf16(matrix.device)
    return torch.bfloat16 if native else torch.float32


class Muon(torch.optim.Optimizer):
    """Groups with `orthogonal=True` take Muon steps (their `weight_decay` is unused: the norm is
    fixed); the others take torch's Nesterov SGD steps."""

    def __init__(
        self, params: Iterable, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, ns_steps: int = 3
    ) -> None:
        if not 0.0 < momentum < 1.0:
            raise ValueError(f"Muon needs a momentum in (0, 1), got {momentum}")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "ns_steps": ns_steps,
            "orthogonal": False,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                (self._orthogonal_step if group["orthogonal"] else self._sgd_step)(params, group)
        return loss

    def _orthogonal_step(self, params: list[torch.Tensor], group: dict) -> None:
        """Muon steps for a group's filter banks: the element-wise parts as one foreach kernel over every
        bank, the Newton-Schulz iteration once per filter shape on the stack of that shape's banks."""
        for p in params:
            state = self.state[p]
            if not state:
                state["momentum_buffer"] = torch.zeros_like(p)
                state["norm"] = p.norm().float()
        buffers = [self.state[p]["momentum_buffer"] for p in params]
        grads = [p.grad for p in params]
        momentum = group["momentum"]
        torch._foreach_mul_(buffers, momentum)
        torch._foreach_add_(buffers, grads)
        directions = torch._foreach_add(grads, buffers, alpha=momentum)  # Nesterov: one momentum step ahead
        by_shape: dict[torch.Size, list[int]] = {}
        for index, p in enumerate(params):
            by_shape.setdefault(p.shape, []).append(index)
        updates: list[torch.Tensor] = [directions[0]] * len(params)
        for shape, indices in by_shape.items():
            stacked = torch.stack([directions[i].reshape(shape[0], -1) for i in indices])
            orthogonal = orthogonalize(stacked, group["ns_steps"], dtype=iteration_dtype(stacked))
            for i, update in zip(indices, orthogonal.unbind(0)):
                updates[i] = update.view(shape).to(params[i].dtype)
        # W <- W - lr ||W0|| U / ||U||, then W's norm back to ||W0|| (a few kernels for every bank at once)
        norms = torch.stack([self.state[p]["norm"] for p in params])
        scales = group["lr"] * norms / torch.stack(torch._foreach_norm(updates)).float().clamp_min(1e-12)
        torch._foreach_mul_(updates, scales.tolist())
        torch._foreach_sub_(params, updates)
        keep = norms / torch.stack(torch._foreach_norm(params)).float().clamp_min(1e-12)
        torch._foreach_mul_(params, keep.tolist())

    def _sgd_step(self, params: list[torch.Tensor], group: dict) -> None:
        buffers = [self.state[p].get("momentum_buffer") for p in params]
        sgd(
            params,
            [p.grad for p in params],
            buffers,
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            lr=group["lr"],
            dampening=0.0,
            nesterov=True,
            maximize=False,
            foreach=False,  # torch's foreach Nesterov adds the momentum into .grad in place: monitors read it after
        )
        for p, buf in zip(params, buffers):
            self.state[p]["momentum_buffer"] = buf


def split_filters(groups: list[dict], lr: float, muon_lr: float) -> list[dict]:
    """Each group's conv weights (4-D) become an orthogonal group at muon_lr (scaled as that group's
    lr is to `lr`, so discriminative LRs carry over); the rest keep their settings and come first,
    so param_groups[0] still holds `lr` (what the logs and the progress bar report)."""
    rest, filters = [], []
    for group in groups:
        scale = group.get("lr", lr) / lr
        others = [p for p in group["params"] if p.ndim != 4]
        convs = [p for p in group["params"] if p.ndim == 4]
        if others:
            rest.append({**group, "params": others})
        if convs:
            filters.append({**group, "params": convs, "lr": muon_lr * scale, "orthogonal": True, "weight_decay": 0.0})
    return rest + filters
