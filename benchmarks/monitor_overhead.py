"""Coach monitors' cost: one training epoch with the default monitors (every N iterations) against
the same epoch with --no-monitors, rounds alternating; plus the time spent inside the monitor
callbacks themselves, which machine noise does not blur.
Run: python benchmarks/monitor_overhead.py [--subset N] [--rounds 3] [--every 50]"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from convcoach import TrainConfig, Trainer
from convcoach.coach import monitors
from convcoach.coach.monitors import SampledMonitor
from convcoach.train.callbacks import Callback


def timed_monitors(trainer: Trainer) -> list[float]:
    """Wrap every monitor hook of `trainer` (and the forward hooks' statistics) so that their
    seconds add up in the returned one-item list."""
    spent = [0.0]
    measure = monitors.unit_stats

    def timed_stats(*args: Any) -> Any:
        start = time.perf_counter()
        result = measure(*args)
        spent[0] += time.perf_counter() - start
        return result

    monitors.unit_stats = timed_stats
    for callback in trainer.callbacks:
        if not isinstance(callback, SampledMonitor):
            continue
        for event in ("on_batch_start", "on_batch_end", "on_train_start", "on_summary"):
            original = getattr(callback, event, None)
            if original is None:
                continue

            def wrapper(*args: Any, _original: Any = original) -> Any:
                start = time.perf_counter()
                result = _original(*args)
                spent[0] += time.perf_counter() - start
                return result

            setattr(callback, event, wrapper)
    return spent


class LoopTimer(Callback):
    """Seconds from the epoch's start to its last iteration: the loop alone, without validation."""

    def on_epoch_start(self, trainer: Trainer) -> None:
        self.start = self.end = time.perf_counter()

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        self.end = time.perf_counter()


def epoch_seconds(config: TrainConfig) -> tuple[float, float, int]:
    """(training-loop seconds, seconds inside monitors, iterations) of one epoch."""
    timer = LoopTimer()
    trainer = Trainer(config, callbacks=[timer])
    spent = timed_monitors(trainer)
    trainer.fit(test=False)
    return timer.end - timer.start, spent[0], trainer.state.step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--every", type=int, default=50)
    args = parser.parse_args()
    base = dict(
        epochs=1,
        quiet=True,
        report=False,
        augment=["hflip"],
        subset=args.subset,
        monitor_every=args.every,
        out="/tmp/convcoach-monitor-overhead",
    )
    on, off, inside = [], [], []
    steps = 0
    for round_index in range(args.rounds):
        for monitored in (True, False) if round_index % 2 == 0 else (False, True):  # alternate who goes first
            seconds, spent, steps = epoch_seconds(TrainConfig(**base, monitors=monitored))
            if monitored:
                on.append(seconds)
                inside.append(spent)
            else:
                off.append(seconds)
    result = {
        "with_monitors_s": [round(t, 2) for t in on],
        "without_s": [round(t, 2) for t in off],
        "ratio_median": round(statistics.median(on) / statistics.median(off), 4),
        "inside_monitors_s": [round(t, 3) for t in inside],
        "inside_share_median": round(statistics.median(inside) / statistics.median(on), 4),  # the robust figure
        "iterations": steps,
        "every": args.every,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
