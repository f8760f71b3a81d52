"""Trainer overhead: one epoch of `convcoach train` against a minimal hand-written PyTorch loop.

Same data (Fashion-MNIST training split in memory), model, batch size, optimizer, schedule and
augmentation; the two alternate for `--rounds` rounds so machine noise hits both alike.
Run: python benchmarks/overhead.py [--subset N] [--rounds 3]"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from convcoach import TrainConfig, Trainer
from convcoach.train.loop import build_model


def hand_loop_epoch(trainer: Trainer) -> float:
    """A 25-line loop with the trainer's model, data tensors, optimizer settings and augmentation."""
    torch.manual_seed(0)
    config = trainer.config
    model = build_model(trainer.spec).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.8, momentum=0.9, nesterov=True, weight_decay=config.weight_decay)
    steps = len(trainer.train_loader)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.8, total_steps=steps)
    images, labels = trainer.data.train.images, trainer.data.train.labels
    mean, std = trainer.normalizer.mean[0], trainer.normalizer.std[0]
    model.train()
    start = time.perf_counter()
    order = torch.randperm(len(labels))
    for index in range(steps):
        batch = order[index * config.batch_size : (index + 1) * config.batch_size]
        x = ((images[batch].float() / 255 - mean) / std).contiguous(memory_format=torch.channels_last)
        x = torch.where(torch.rand(len(x), 1, 1, 1) < 0.5, x.flip(3), x)
        loss = F.cross_entropy(model(x), labels[batch], label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        loss.item()
    return time.perf_counter() - start



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    config = TrainConfig(epochs=1, quiet=True, augment=["hflip"], val_fraction=0.1, subset=args.subset, out="/tmp/convcoach-overhead")
    reference = Trainer(config)
    ours, theirs = [], []
    for _ in range(args.rounds):
        theirs.append(hand_loop_epoch(reference))
        # the trainer's epoch time includes its validation pass; subtract it to compare the loop alone
        trainer = Trainer(config)
        trainer.fit()
        epoch = trainer.state.history[0]
        val_start = time.perf_counter()
        trainer.evaluate(trainer.val_loader)
        val_time = time.perf_counter() - val_start
        ours.append(epoch["time"] - val_time)
    result = {
        "hand_loop_s": [round(t, 2) for t in theirs],
        "convcoach_s": [round(t, 2) for t in ours],
        "ratio_median": round(statistics.median(ours) / statistics.median(theirs), 4),
        "train_images": len(reference.data.train),
        "batch_size": config.batch_size,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
