"""Mini-batches for the loop: uint8 tensors in memory, gathered, normalized and augmented as
whole-batch ops on the training device; sets too large for memory stream through a DataLoader."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import numpy as np
import torch

from .augment import Augmenter
from .bundle import Split
from .imagefolder import load_image
from .preprocess import Normalizer
from .samplers import SAMPLERS

log = logging.getLogger("convcoach")


class BatchLoader:
    """Shuffled every epoch from a seeded generator whose state is part of the checkpoint; the state
    also says how many batches of the current epoch were served, so a mid-epoch resume continues
    with the same permutation at the next batch. `sampler` names how an epoch's order is drawn
    (data/samplers.py: random, balanced); both draw from that one generator."""

    def __init__(
        self,
        split: Split,
        batch_size: int,
        normalizer: Normalizer,
        device: torch.device | str = "cpu",
        shuffle: bool = False,
        augment: Augmenter | None = None,
        seed: int = 0,
        drop_last: bool = False,
        channels_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int | None = None,
        sampler: str = "random",
    ) -> None:
        self.device = torch.device(device)
        self.split = split
        self.batch_size = batch_size
        self.normalizer = normalizer
        self.shuffle = shuffle
        self.draw_order = SAMPLERS.get(sampler)(split.labels) if shuffle else None
        self.augment = augment if augment and augment.ops else None
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator().manual_seed(seed)
        self.aug_generator = torch.Generator(device=self.device).manual_seed(seed + 1)
        self.position = 0  # batches of the current epoch served so far (0 between epochs)
        self._epoch_start: torch.Tensor | None = None  # the generator's state before this epoch's permutation
        self._resume_at = 0  # set by load_state_dict: the next epoch starts at this batch
        if split.images is not None:
            # the whole set moves to the device once; batches never leave it (a memory-mapped set stays
            # on disk and in the page cache: its batches are gathered there and then moved)
            self.images = split.images if split.mapped else split.images.to(self.device)
            self.labels = split.labels.to(self.device)
        self.num_workers = num_workers if num_workers is not None else min(4, os.cpu_count() or 1)
        if self.augment is not None and self.augment.needs_fit:
            # colour ops and fancy PCA take their statistics from the split this loader serves
            self.augment.fit(self._fit_images(), normalizer)

    def __len__(self) -> int:
        per_rank = len(self.split) // self.world_size
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def _order(self) -> torch.Tensor:
        n = len(self.split)
        order = self.draw_order(self.generator) if self.draw_order is not None else torch.arange(n)
        # every rank draws the same order and keeps its own interleaved share
        per_rank = n // self.world_size if self.world_size > 1 else n
        return order[self.rank :: self.world_size][:per_rank]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        start, self._resume_at = self._resume_at, 0
        self._epoch_start = self.generator.get_state()
        order = self._order()
        count = len(self)
        batches = (
            self._stream(order, start, count)
            if self.split.images is None
            else self._gather(order if self.split.mapped else order.to(self.device), start, count)
        )
        for self.position, batch in enumerate(batches, start + 1):
            yield batch
        self.position, self._epoch_start = 0, None

    def _gather(self, order: torch.Tensor, start: int, count: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for index in range(start, count):
            batch = order[index * self.batch_size : (index + 1) * self.batch_size]
            images = self.images[batch].to(self.device, non_blocking=True) if self.split.mapped else self.images[batch]
            yield self._finish(images), self.labels[batch.to(self.labels.device)]

    def _finish(self, images: torch.Tensor) -> torch.Tensor:
        x = self.normalizer(images)
        if self.augment is not None:
            x = self.augment(x, self.aug_generator)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _stream(self, order: torch.Tensor, start: int, count: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        dataset = _FileDataset(self.split.files, self.split.labels, self.split.shape)
        batches = [order[i * self.batch_size : (i + 1) * self.batch_size].tolist() for i in range(start, count)]
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=batches, num_workers=self.num_workers, pin_memory=self.device.type == "cuda"
        )
        for images, labels in loader:
            yield self._finish(images.to(self.device, non_blocking=True)), labels.to(self.device, non_blocking=True)

    def _fit_images(self, limit: int = 2048) -> torch.Tensor:
        """The split's uint8 images; for a streamed set, `limit` evenly spaced ones decoded from disk."""
        if self.split.images is not None:
            return self.split.images
        dataset = _FileDataset(self.split.files, self.split.labels, self.split.shape)
        indices = torch.linspace(0, len(dataset) - 1, min(limit, len(dataset))).long().tolist()
        return torch.stack([dataset[i][0] for i in indices])

    def state_dict(self) -> dict:
        """Mid-epoch, `generator` is the state that draws the current epoch's permutation and `position`
        the batches already served; between epochs, the state for the next epoch and 0."""
        mid_epoch = self.position > 0 and self._epoch_start is not None
        return {
            "generator": self._epoch_start if mid_epoch else self.generator.get_state(),
            "aug_generator": self.aug_generator.get_state(),
            "aug_device": self.aug_generator.device.type,
            "position": self.position if mid_epoch else 0,
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        saved_device = state.get("aug_device", "cpu")
        if saved_device == self.aug_generator.device.type:
            self.aug_generator.set_state(state["aug_generator"])
        else:  # a generator's state is device-specific: a run moved between CPU and GPU draws afresh
            fresh = torch.Generator().set_state(
                state["generator"]
            )  # a seed from the saved state; the order's generator is not advanced
            self.aug_generator.manual_seed(int(torch.randint(2**62, (1,), generator=fresh)))
            log.warning(
                "resumed on %s a run saved on %s: its augmentation draws continue from a new seed, so the run "
                "will not be bit-identical to an uninterrupted one",
                self.aug_generator.device.type,
                saved_device,
            )
        # mid-epoch: the generator now redraws the interrupted epoch's permutation, served from `position`
        self.position = self._resume_at = int(state.get("position", 0))  # older checkpoints have none
        self._epoch_start = state["generator"] if self.position else None


class _FileDataset(torch.utils.data.Dataset):
    """Decodes one image per item in a worker process; used only for sets larger than memory."""

    def __init__(self, files: list, labels: torch.Tensor, shape: tuple[int, int, int]) -> None:
        self.files, self.labels, self.shape = files, labels, shape

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        channels, height, width = self.shape
        image = load_image(self.files[index], channels, (height, width))
        return torch.from_numpy(np.ascontiguousarray(image)), self.labels[index]
