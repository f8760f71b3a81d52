"""The default training step on an idle and on a busy machine, per thread count and OpenMP wait policy
(issue 25, part 7).

Each setting runs in a fresh process (OMP_* must be set before torch loads) that times the default
net's training step (model, Muon, channels_last, as `train` makes it; fp32 or the CLI's precision) for
a few seconds. "Busy" starts 1 or 2 other processes that each keep one core busy with pure Python,
as a shared laptop or CI runner would. Then the same under the policy `convcoach` applies itself at
start-up (convcoach/threads.py), with nothing set by hand.

    python benchmarks/busy_machine.py [--seconds 8] [--out benchmarks/results/busy_machine.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
sys.path.insert(0, "benchmarks")
if sys.argv[1] == "convcoach":  # as the CLI: convcoach loads first, so the window starts before torch's import
    import convcoach
import torch
decision = None
if sys.argv[1] == "convcoach":
    from convcoach.threads import choose_threads
    count, reason = choose_threads(None, torch.get_num_threads())
    torch.set_num_threads(count)
    decision = reason
from utilization import Step
from convcoach.precision import cpu_has_native_bf16
precision = "bf16" if cpu_has_native_bf16() else "fp32"
step = Step({}, 256)
flops = step.flops()
step(precision)
seconds, steps, start = float(sys.argv[2]), 0, time.perf_counter()
while time.perf_counter() - start < seconds or steps < 2:
    step(precision)
    steps += 1
took = (time.perf_counter() - start) / steps
print(json.dumps({"threads": torch.get_num_threads(), "precision": precision, "step_ms": round(took * 1e3, 1),
    "images_per_second": round(256 / took), "gflops": round(flops / took / 1e9, 1), "decision": decision}))
"""


def spin() -> None:
    while True:
        pass


SETTINGS = {
    "2 threads, default wait": {"OMP_NUM_THREADS": "2"},
    "2 threads, PASSIVE": {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"},
    "1 thread": {"OMP_NUM_THREADS": "1"},
    "convcoach's choice": {},
}


def measure(name: str, env_extra: dict, seconds: float) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "CONVCOACH_THREADS"))}
    env.update(env_extra)
    mode = "convcoach" if name == "convcoach's choice" else "fixed"
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(seconds)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2, help="idle settings are alternated this many times")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/busy_machine.json"))
    args = parser.parse_args()
    sys.path.insert(0, "benchmarks")
    from utilization import host

    results: dict = {"host": host(), "cores": os.cpu_count(), "seconds_per_setting": args.seconds, "runs": {}}
    for load in (0, 1, 2):
        spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(load)]
        for p in spinners:
            p.start()
        time.sleep(1.5)  # let the load average see them
        label = "idle" if load == 0 else f"{load} busy process{'es' if load > 1 else ''}"
        rows: dict = {name: [] for name in SETTINGS}
        for _ in range(args.rounds if load == 0 else 1):
            for name, env in SETTINGS.items():
                rows[name].append(measure(name, env, args.seconds))
                print(label, name, rows[name][-1], file=sys.stderr, flush=True)
        for p in spinners:
            p.terminate()
        # the best round of each setting (noise only ever slows a run down)
        results["runs"][label] = {name: max(r, key=lambda x: x["images_per_second"]) for name, r in rows.items()}
    results["date"] = time.strftime("%Y-%m-%d")
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
