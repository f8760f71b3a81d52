"""Trainer overhead: `convcoach train` against a minimal hand-written PyTorch loop, interleaved step by step.

The host's speed drifts by +-20% over seconds (the same epoch took 7.1-10.0 s), so timing whole
epochs one after the other measured the noise, not the trainer (session 6: ratios 0.99-1.11 from
the same code). Here a callback runs one hand-loop step after every trainer step, in the same
process on the same data, so both see the same machine state:

  trainer step = time from the end of the previous hand step to the trainer's next `on_batch_end`
                 (loader, augmentation, forward/backward/step, schedule, metrics, every callback
                 before this one: explosion guard, monitors, metrics logger, progress, diagnosis)
  epoch end    = everything the trainer does between epochs except validation (metrics, checkpoint)

The ratio is (trainer steps + epoch ends) / hand steps over all steps after each loop's first.
Run: python benchmarks/overhead.py [--epochs 2] [--subset N] [--no-monitors]"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from convcoach import TrainConfig, Trainer
from convcoach.models.spec import build_model
from convcoach.precision import autocast
from convcoach.train.callbacks import Callback
from convcoach.train.muon import Muon, split_filters


def hand_loop(trainer: Trainer) -> Iterator[None]:
    """A 20-line loop with the trainer's model, data tensors, optimizer settings, precision and augmentation;
    yields after each step."""
    config = trainer.config
    model = build_model(trainer.spec).to(memory_format=torch.channels_last)
    # the default's optimizer: Muon on the conv filters, Nesterov SGD (lr 0.8) on the rest
    groups = split_filters([{"params": list(model.parameters())}], 0.8, config.muon_lr)
    optimizer = Muon(groups, lr=0.8, momentum=0.9, weight_decay=config.weight_decay)
    steps_per_epoch = len(trainer.train_loader)
    peaks = [group["lr"] for group in optimizer.param_groups]
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=config.epochs * steps_per_epoch)
    images, labels = trainer.data.train.images, trainer.data.train.labels
    mean, std = trainer.normalizer.mean[0], trainer.normalizer.std[0]
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(labels))
        for index in range(steps_per_epoch):
            batch = order[index * config.batch_size : (index + 1) * config.batch_size]
            x = ((images[batch].float() / 255 - mean) / std).contiguous(memory_format=torch.channels_last)
            x = torch.where(torch.rand(len(x), 1, 1, 1) < 0.5, x.flip(3), x)
            with autocast(trainer.precision, trainer.device):  # the precision the trainer chose (bf16 on a bf16 CPU)
                loss = F.cross_entropy(model(x), labels[batch], label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss.item()
            yield


class Interleave(Callback):
    """Runs last on every event: times the trainer's step, then runs and times one hand-loop step."""

    order = 10_000

    def __init__(self) -> None:
        self.ours: list[float] = []
        self.theirs: list[float] = []
        self.epoch_end: list[float] = []
        self.validation = 0.0
        self.loop: Iterator[None] | None = None
        self.last = 0.0

    def on_train_start(self, trainer: Trainer) -> None:
        self.loop = hand_loop(trainer)

    def on_epoch_start(self, trainer: Trainer) -> None:
        self.last = time.perf_counter()

    def on_epoch_end(self, trainer: Trainer, metrics: dict) -> None:
        # the time since the epoch's last step (metrics, checkpoint, other callbacks), validation excluded
        self.epoch_end.append(time.perf_counter() - self.last - self.validation)

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        now = time.perf_counter()
        self.ours.append(now - self.last)
        next(self.loop)
        self.last = time.perf_counter()
        self.theirs.append(self.last - now)


class TimedTrainer(Trainer):
    """Notes the validation time, which the hand loop has no counterpart for."""

    def _validate(self) -> dict[str, float]:
        start = time.perf_counter()
        result = super()._validate()
        clock = next(c for c in self.callbacks if isinstance(c, Interleave))
        clock.validation = time.perf_counter() - start
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--no-monitors", dest="monitors", action="store_false", help="switch the coach's monitors off")
    args = parser.parse_args()
    config = TrainConfig(
        epochs=args.epochs,
        quiet=True,
        augment=["hflip"],
        val_fraction=0.1,
        subset=args.subset,
        out="/tmp/convcoach-overhead",
        overwrite=True,  # a scratch directory, replaced by each invocation
        report=False,
        monitors=args.monitors,
    )
    clock = Interleave()
    trainer = TimedTrainer(config, callbacks=[clock])
    trainer.fit(test=False)
    steps = trainer.steps_per_epoch
    # each epoch's first step carries the loader's start-up (ours) or nothing special (theirs);
    # keep all but the run's first
    ours, theirs = clock.ours[1:], clock.theirs[1:]
    pairs = [a / b for a, b in zip(ours, theirs)]
    result = {
        "ratio": round((sum(ours) + sum(clock.epoch_end)) / sum(theirs), 4),
        "ratio_steps_only": round(sum(ours) / sum(theirs), 4),
        "median_step_ratio": round(statistics.median(pairs), 4),
        "trainer_step_ms_median": round(1000 * statistics.median(ours), 1),
        "hand_step_ms_median": round(1000 * statistics.median(theirs), 1),
        "epoch_end_s": [round(t, 3) for t in clock.epoch_end],
        "steps": len(ours),
        "train_images": len(trainer.data.train),
        "steps_per_epoch": steps,
        "batch_size": config.batch_size,
        "threads": torch.get_num_threads(),
        "precision": trainer.precision,
        "precision_reason": trainer.precision_reason,
        "monitors": args.monitors,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
