"""Gradient accumulation (`--accumulate N`): which micro-batches of an epoch end an optimizer step.

As in Lightning and Hugging Face's Trainer, `batch_size` stays the micro-batch the loader serves and
the effective batch is batch_size x N; the LR schedule counts optimizer steps, and the epoch's last
group, when fewer than N micro-batches are left, still steps (its loss is divided by its own size)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MicroBatch:
    """Where one micro-batch sits in its group: the first zeroes the gradients, the last steps."""

    first: bool
    last: bool
    group_size: int  # micro-batches in its group: the loss is divided by this before backward


WHOLE_BATCH = MicroBatch(first=True, last=True, group_size=1)  # no accumulation: every batch steps


@dataclass(frozen=True)
class Accumulation:
    """N micro-batches per optimizer step over an epoch of `micro_batches` loader batches."""

    every: int  # N
    micro_batches: int  # the loader's batches per epoch

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch: ceil(micro_batches / N)."""
        return -(-self.micro_batches // self.every)

    def at(self, position: int) -> MicroBatch:
        """The `position`-th micro-batch of the epoch (from 1, the loader's count, so a mid-epoch resume
        at a group boundary continues with whole groups)."""
        start = (position - 1) // self.every * self.every
        size = min(self.every, self.micro_batches - start)
        return MicroBatch(position - 1 == start, position == start + size, size)
