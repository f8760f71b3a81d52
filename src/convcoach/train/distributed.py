"""Distributed data-parallel training on torch.distributed: torchrun sets the environment, we read it.

gloo on CPU, nccl on CUDA; only rank 0 logs and writes; metrics are all-reduced."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn

from ..errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """Under torchrun: several processes, or one that torchrun started (`--nproc_per_node 1`, DDP on one
    device, as `gpu_check.sh` runs it); a RANK/WORLD_SIZE=1 left in the environment alone is not DDP."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    return int(os.environ["WORLD_SIZE"]) > 1 or "TORCHELASTIC_RUN_ID" in os.environ


def init_distributed(device_name: str) -> DistContext:
    """Join the process group torchrun prepared (env:// rendezvous); a no-op in a single process."""
    if not launched_by_torchrun():
        return DistContext()
    if dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"process {local_rank} of this node has no GPU of its own ({torch.cuda.device_count()} visible): "
                "use at most one process per GPU (--nproc / torchrun --nproc_per_node), or --device cpu"
            )
        torch.cuda.set_device(local_rank)
    dist.init_process_group("cpu:gloo,cuda:nccl" if use_cuda else "gloo")  # nccl takes CUDA tensors only
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank)


def device_for(context: DistContext, device: torch.device) -> torch.device:
    """Each rank owns one GPU (its local rank); on CPU all ranks share the host."""
    if context.enabled and device.type == "cuda":
        return torch.device("cuda", context.local_rank)
    return device


def wrap_model(model: nn.Module, context: DistContext, device: torch.device, sync_bn: bool) -> nn.Module:
    """SyncBatchNorm (CUDA only: torch has no CPU kernel for it) and DistributedDataParallel."""
    if sync_bn:
        if device.type != "cuda":
            raise ConfigError("sync_bn needs CUDA devices: torch's SyncBatchNorm has no CPU kernel; drop --sync-bn")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if not context.enabled:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside torch.compile's and DDP's wrappers (whose state_dict keys carry prefixes)."""
    model = getattr(model, "_orig_mod", model)  # torch.compile's OptimizedModule
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def no_sync(model: nn.Module, skip: bool) -> contextlib.AbstractContextManager:
    """DDP's `no_sync` while `skip` (a micro-batch that does not step: its gradients accumulate locally,
    the group's last backward all-reduces the sum); a no-op otherwise and without DDP."""
    model = getattr(model, "_orig_mod", model)
    if skip and isinstance(model, nn.parallel.DistributedDataParallel):
        return model.no_sync()
    return contextlib.nullcontext()


def all_reduce_sum(values: torch.Tensor, context: DistContext) -> torch.Tensor:
    if context.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier(context: DistContext) -> None:
    if context.enabled:
        dist.barrier()


def shutdown(context: DistContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """`--nproc N` on one machine: re-run the same command under torchrun with N processes."""
    if nproc < 2:
        raise ConfigError(f"nproc must be >= 2 to launch distributed training, got {nproc}")
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "convcoach",
        *argv,
    ]
