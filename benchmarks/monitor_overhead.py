"""Coach monitors' cost: one training epoch with the default monitors (every N iterations; the step-size
and gradient-noise instruments every 4N, each with an extra pass) against the same epoch with
--no-monitors, rounds alternating; plus the time spent inside the monitor callbacks themselves (per
monitor, forward-hook statistics and histograms included), which machine noise does not blur.
Run: python benchmarks/monitor_overhead.py [--subset N] [--rounds 3] [--every 50] [--out FILE]"""

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

HOOK_HELPERS = {name: getattr(monitors, name) for name in ("unit_stats", "activation_histogram")}


def timed_monitors(trainer: Trainer) -> dict[str, float]:
    """Wrap every monitor hook of `trainer` (and the activation hooks' statistics and histograms) so that
    their seconds add up, per monitor, in the returned dict."""
    spent: dict[str, float] = {}

    def timed(function: Any, name: str) -> Any:
        def wrapper(*args: Any) -> Any:
            start = time.perf_counter()
            result = function(*args)
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - start
            return result

        return wrapper

    for helper, original in HOOK_HELPERS.items():  # called from the forward hooks, by module name
        setattr(monitors, helper, timed(original, "activations"))
    for callback in trainer.callbacks:
        if not isinstance(callback, SampledMonitor):
            continue
        spent.setdefault(callback.name, 0.0)
        for event in ("on_batch_start", "on_before_optimizer_step", "on_batch_end", "on_train_start", "on_summary"):
            setattr(callback, event, timed(getattr(callback, event), callback.name))
    return spent


def host() -> dict[str, Any]:
    """The CPU's model name and whether it has bf16 instructions (AVX512-BF16, AMX), from /proc/cpuinfo."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return {}
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    return {"cpu": name, "bf16_flags": sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"})}


class LoopTimer(Callback):
    """Seconds from the epoch's start to its last iteration: the loop alone, without validation."""

    def on_epoch_start(self, trainer: Trainer) -> None:
        self.start = self.end = time.perf_counter()

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        self.end = time.perf_counter()


def epoch_seconds(config: TrainConfig) -> tuple[float, dict[str, float], dict[str, int], int, str]:
    """(training-loop seconds, seconds inside each monitor, samples each took, iterations, precision) of one epoch."""
    timer = LoopTimer()
    trainer = Trainer(config, callbacks=[timer])
    spent = timed_monitors(trainer)
    trainer.fit(test=False)
    samples = {c.name: len(c.samples) for c in trainer.callbacks if isinstance(c, SampledMonitor)}
    return timer.end - timer.start, spent, samples, trainer.state.step, trainer.precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--out", default=None, help="also write the JSON result here")
    args = parser.parse_args()
    base = dict(
        epochs=1,
        quiet=True,
        report=False,
        augment=["hflip"],
        subset=args.subset,
        monitor_every=args.every,
        out="/tmp/convcoach-monitor-overhead",
        overwrite=True,  # every round trains into the same scratch directory
    )
    on, off, inside, per_monitor = [], [], [], []
    steps, precision, samples = 0, "", {}
    for round_index in range(args.rounds):
        for monitored in (True, False) if round_index % 2 == 0 else (False, True):  # alternate who goes first
            seconds, spent, counts, steps, precision = epoch_seconds(TrainConfig(**base, monitors=monitored))
            if monitored:
                samples = counts
                on.append(seconds)
                inside.append(sum(spent.values()))
                per_monitor.append(spent)
            else:
                off.append(seconds)
    names = list(per_monitor[0]) if per_monitor else []
    step = statistics.median(off) / steps  # one training step without monitors
    result = {
        "with_monitors_s": [round(t, 2) for t in on],
        "without_s": [round(t, 2) for t in off],
        "ratio_median": round(statistics.median(on) / statistics.median(off), 4),
        "inside_monitors_s": [round(t, 3) for t in inside],
        "inside_share_median": round(statistics.median(inside) / statistics.median(on), 4),  # the robust figure
        "inside_share_per_round": [round(i / t, 4) for i, t in zip(inside, on)],
        "inside_share_per_monitor": {
            name: round(statistics.median(s[name] for s in per_monitor) / statistics.median(on), 5) for name in names
        },
        # one sample's cost in training steps: with `every`, a monitor costs this / every of the loop
        "per_sample_in_steps": {
            name: round(statistics.median(s[name] for s in per_monitor) / max(samples[name], 1) / step, 3)
            for name in names
        },
        "samples": {name: samples[name] for name in names},
        "iterations": steps,
        "every": args.every,
        "precision": precision,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        **host(),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
