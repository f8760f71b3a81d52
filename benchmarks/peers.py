"""Side by side with what users would run instead (issue 25, part 3): wall time to 92% and 93%
Fashion-MNIST test accuracy, same machine, same data, same threads, one peer at a time.

  convcoach   `convcoach.train()` with no options (the default recipe and its time rule)
  lightning   the same model, optimizer (Muon + Nesterov SGD), one-cycle schedule, label smoothing,
              bf16 autocast and flips under PyTorch Lightning's Trainer, for the epochs convcoach ran
  tutorial    a typical tutorial: a 2-conv CNN, Adam at 1e-3, a per-sample Dataset and a DataLoader
              with two workers, batch 64
  hand loop   a strong hand-written loop: the same ResNet-14, Nesterov SGD at 0.8, one-cycle, label
              smoothing 0.1, flips as batched tensor ops, bf16 autocast, channels_last

Each is evaluated on the test set after every epoch for the curve only: that time is left out of its
clock (and out of convcoach's time budget). The clock starts before the peer loads its data.

The peers take turns, one epoch each (a thread per peer, only one running at a time), and each clock
counts only its own turns: this host's speed drifts by 20-40% over minutes, so peers run one after
another were timed under different machines (session 17: the same step 13 s an epoch in the last
peer, 17-18 s in the first two). Convcoach runs its first epoch alone; the others start when its
time rule has planned the run, and train for the epochs it planned (or --epochs).

    python benchmarks/peers.py [--only NAME ...] [--cap-minutes 8] [--out benchmarks/results/peers.json]
                               [--keep EARLIER.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from convcoach import TrainConfig, Trainer
from convcoach.data import Normalizer, SourceOptions, load_data
from convcoach.models.spec import build_model, model_spec
from convcoach.precision import autocast, cpu_has_native_bf16
from convcoach.train.budget import TimeBudget
from convcoach.train.callbacks import Callback
from convcoach.train.optim import create_optimizer
from convcoach.train.schedules import create_scheduler
from convcoach.train.setup import effective_lr, optim_settings

PRECISION = "bf16" if cpu_has_native_bf16() else "fp32"


class Curve:
    """Test accuracy after each epoch against the peer's clock, with the evaluation's own time removed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.start = time.perf_counter()
        self.paused = 0.0
        self.points: list[tuple[float, float]] = []

    def record(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, normalizer: Normalizer) -> float:
        began = time.perf_counter()
        clock = began - self.start - self.paused
        model.eval()
        correct = 0
        with torch.no_grad(), autocast(PRECISION, torch.device("cpu")):
            for i in range(0, len(images), 1000):
                x = normalizer(images[i : i + 1000]).contiguous(memory_format=torch.channels_last)
                correct += int((model(x).argmax(1) == labels[i : i + 1000]).sum())
        model.train()
        self.points.append((round(clock, 1), correct / len(images)))
        print(f"{self.name:>10}  {clock:6.1f} s  {correct / len(images):.4f}", file=sys.stderr, flush=True)
        took = time.perf_counter() - began
        self.paused += took
        return took

    def time_to(self, target: float) -> float | None:
        return next((t for t, acc in self.points if acc >= target), None)


class Turns:
    """One peer at a time, an epoch per turn, in the order they joined; `done_epoch` hands the turn on
    and returns how long its caller then waited (time that is not that peer's)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.order: list[str] = []
        self.current: str | None = None

    def register(self, name: str) -> None:
        """In the order before its thread starts, so the turn that ends next already passes to it."""
        with self.cond:
            self.order.append(name)
            self.current = self.current or name

    def wait(self, name: str) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.current == name)

    def done_epoch(self, name: str, curve: Curve) -> None:
        began = time.perf_counter()
        with self.cond:
            self.current = self.order[(self.order.index(name) + 1) % len(self.order)]
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.current == name)
        curve.paused += time.perf_counter() - began

    def leave(self, name: str) -> None:
        with self.cond:
            index = self.order.index(name)
            self.order.remove(name)
            self.current = self.order[index % len(self.order)] if self.order else None
            self.cond.notify_all()


TURNS = Turns()


def fashion():
    return load_data("fashion-mnist", SourceOptions(), val_fraction=0.05)


class TestEachEpoch(Callback):
    order = 98

    def __init__(self, curve: Curve, bundle, start_others) -> None:
        self.curve, self.bundle, self.start_others = curve, bundle, start_others

    def on_epoch_end(self, trainer, metrics) -> None:
        paused = self.curve.paused
        self.curve.record(trainer.model, self.bundle.test.images, self.bundle.test.labels, trainer.normalizer)
        if self.start_others is not None:
            self.start_others(trainer.config.epochs)  # the epochs the time rule planned in epoch 1
            self.start_others = None
        TURNS.done_epoch("convcoach", self.curve)
        # the curve's and the other peers' time is not the run's: off the budget's clock and its epoch times
        trainer.created_at += self.curve.paused - paused
        for callback in trainer.callbacks:
            if isinstance(callback, TimeBudget):
                callback._clock += self.curve.paused - paused


def run_convcoach(cap: float, start_others) -> dict:
    curve = Curve("convcoach")
    bundle = fashion()
    # the same bundle the Trainer would load (default data, 5% validation, seed 0), loaded once on its clock
    callbacks = [TestEachEpoch(curve, bundle, start_others)]
    trainer = Trainer(TrainConfig(quiet=True, report=False), data=bundle, callbacks=callbacks)
    summary = trainer.fit()
    return {"points": curve.points, "epochs": summary["epochs_run"], "final_tta": summary["test_accuracy"]}


def recipe_parts(config: TrainConfig, steps_per_epoch: int, epochs: int):
    torch.manual_seed(0)  # the global generator: one peer runs at a time, so each starts from the same init
    model = build_model(model_spec(config, (1, 28, 28), 10)).to(memory_format=torch.channels_last)
    lr = effective_lr(config)
    optimizer = create_optimizer(config.optimizer, model, optim_settings(config, lr))
    scheduler = create_scheduler(optimizer, config.schedule, epochs * steps_per_epoch, steps_per_epoch)
    return model, optimizer, scheduler


def flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    mask = torch.rand(len(x), generator=generator) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(-1), x)


def run_lightning(cap: float, epochs: int) -> dict:
    import lightning as L

    curve = Curve("lightning")
    bundle = fashion()
    normalizer = Normalizer.fit(bundle.train.images)
    config = TrainConfig(epochs=epochs).validate()
    steps = math.ceil(len(bundle.train) / config.batch_size)
    model, optimizer, scheduler = recipe_parts(config, steps, epochs)
    generator = torch.Generator().manual_seed(0)
    test_images, test_labels = bundle.test.images, bundle.test.labels

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def training_step(self, batch, index):
            x, y = batch
            x = flip(normalizer(x), generator).contiguous(memory_format=torch.channels_last)
            return F.cross_entropy(self.net(x), y, label_smoothing=config.label_smoothing)

        def configure_optimizers(self):
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

        def on_train_epoch_end(self) -> None:
            curve.record(self.net, test_images, test_labels, normalizer)
            self.trainer.should_stop = curve.points[-1][0] > cap * 60
            TURNS.done_epoch("lightning", curve)

    data = torch.utils.data.TensorDataset(bundle.train.images, bundle.train.labels)
    loader = torch.utils.data.DataLoader(data, batch_size=config.batch_size, shuffle=True)
    trainer = L.Trainer(
        max_epochs=epochs,
        precision="bf16-mixed" if PRECISION == "bf16" else "32-true",
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Module(), loader)
    return {"points": curve.points, "epochs": epochs}


class TutorialSet(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images.numpy(), labels.numpy()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        x = torch.from_numpy(self.images[index].astype(np.float32) / 255.0)  # ToTensor
        return (x - 0.5) / 0.5, int(self.labels[index])  # Normalize((0.5,), (0.5,))


def run_tutorial(cap: float, epochs: int = 30) -> dict:
    curve = Curve("tutorial")
    bundle = fashion()
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10),
    )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(
        TutorialSet(bundle.train.images, bundle.train.labels), batch_size=64, shuffle=True, num_workers=2
    )
    plain = Normalizer([0.5], [0.5])
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        curve.record(model, bundle.test.images, bundle.test.labels, plain)
        if curve.points[-1][0] > cap * 60:
            break
        TURNS.done_epoch("tutorial", curve)
    return {"points": curve.points, "epochs": len(curve.points)}


def run_hand_loop(cap: float, epochs: int) -> dict:
    curve = Curve("hand loop")
    bundle = fashion()
    normalizer = Normalizer.fit(bundle.train.images)
    config = TrainConfig(epochs=epochs, optimizer="nesterov").validate()
    images, labels = bundle.train.images, bundle.train.labels
    steps = math.ceil(len(images) / config.batch_size)
    model, optimizer, scheduler = recipe_parts(config, steps, epochs)
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for i in range(steps):
            batch = order[i * config.batch_size : (i + 1) * config.batch_size]
            x = flip(normalizer(images[batch]), generator).contiguous(memory_format=torch.channels_last)
            with autocast(PRECISION, torch.device("cpu")):
                loss = F.cross_entropy(model(x), labels[batch], label_smoothing=config.label_smoothing)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
        curve.record(model, bundle.test.images, bundle.test.labels, normalizer)
        if curve.points[-1][0] > cap * 60:
            break
        TURNS.done_epoch("hand loop", curve)
    return {"points": curve.points, "epochs": len(curve.points)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", default=["convcoach", "lightning", "tutorial", "hand loop"])
    parser.add_argument("--cap-minutes", type=float, default=8.0)
    parser.add_argument("--epochs", type=int, help="peers' epochs (default: what convcoach's time rule chose)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/peers.json"))
    parser.add_argument(
        "--keep", type=Path, help="an earlier result file: peers left out of --only are copied from it with its date"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from utilization import host

    result: dict = {"host": host(), "precision": PRECISION, "date": time.strftime("%Y-%m-%d"), "peers": {}}
    result["interleaved"] = "an epoch per turn; each clock counts its own turns"
    runs: dict[str, dict] = {}
    errors: list[BaseException] = []

    def peer(name: str, epochs: int | None, start_others=None) -> None:
        TURNS.wait(name)
        try:
            if name == "convcoach":
                runs[name] = run_convcoach(args.cap_minutes, start_others)
            elif name == "lightning":
                runs[name] = run_lightning(args.cap_minutes, epochs or 20)
            elif name == "tutorial":
                runs[name] = run_tutorial(args.cap_minutes)
            else:
                runs[name] = run_hand_loop(args.cap_minutes, epochs or 20)
            print(f"{name}: done", file=sys.stderr, flush=True)
        except BaseException as exc:  # reported by main; the turn passes on either way
            errors.append(exc)
        finally:
            TURNS.leave(name)

    others = [name for name in args.only if name != "convcoach"]
    threads: list[threading.Thread] = []

    def start(names: list[str], epochs: int | None) -> None:
        for name in names:
            TURNS.register(name)
            thread = threading.Thread(target=peer, args=(name, args.epochs or epochs), name=name)
            thread.start()
            threads.append(thread)

    if "convcoach" in args.only:  # alone for its first epoch, then the others with the epochs it planned
        start_others = functools.partial(start, others)  # called with the epochs convcoach planned
        TURNS.register("convcoach")
        threads.append(threading.Thread(target=peer, args=("convcoach", None, start_others), name="convcoach"))
        threads[0].start()
    else:
        start(others, None)
    while any(thread.is_alive() for thread in threads):
        for thread in list(threads):
            thread.join()
    if errors:
        raise errors[0]
    for name in args.only:
        run = runs[name]
        run["seconds_to_92"], run["seconds_to_93"] = (
            next((t for t, a in run["points"] if a >= target), None) for target in (0.92, 0.93)
        )
        result["peers"][name] = run
    if args.keep:  # peers that do not run convcoach's code (the tutorial) need not be rerun after a change
        earlier = json.loads(args.keep.read_text())
        for name, run in earlier["peers"].items():
            if name not in result["peers"]:
                result["peers"][name] = {**run, "measured": earlier["date"]}
    mine = result["peers"].get("convcoach", {})
    for run in result["peers"].values():
        for target in ("92", "93"):
            ours, theirs = mine.get(f"seconds_to_{target}"), run[f"seconds_to_{target}"]
            run[f"ratio_to_{target}"] = round(theirs / ours, 2) if ours and theirs else None
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: {m: v for m, v in r.items() if m != "points"} for k, r in result["peers"].items()}, indent=2))


if __name__ == "__main__":
    main()
