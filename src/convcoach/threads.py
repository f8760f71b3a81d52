"""How many intra-op CPU threads a run uses: torch's count, less the cores other work keeps busy.

OpenMP threads spin while they wait for each other. When another process holds a core, a thread
placed there waits for a time slice while its partner spins: measured on 2 cores with one other busy
process, the default step ran at 533 images/s with 2 threads and 2,453 with 1 (benchmarks/busy_machine.py).
So the cores in use by other processes are measured (from /proc/stat, less this process's own CPU
time) between `mark()`, called when convcoach is imported, and `choose_threads`, and only the cores
left free are used. An idle machine keeps torch's count, so its speed is unchanged; the wait policy is
left alone (OMP_WAIT_POLICY=PASSIVE cost a third of the idle speed: 2,581 against 3,865 images/s).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

BUSY_WINDOW = (0.2, 30.0)  # seconds: a shorter window is too coarse (10 ms ticks), a longer one stale
SAMPLE_SECONDS = 0.25  # a fresh window's length when the one since mark() does not fit BUSY_WINDOW


@dataclass(frozen=True)
class CpuSample:
    wall: float  # time.perf_counter()
    busy: float  # seconds the cores this process may run on spent busy, by anyone
    own: float  # this process's CPU seconds


_marked: CpuSample | None = None


def cores() -> list[int]:
    """The cores this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def sample(cpus: list[int] | None = None) -> CpuSample | None:
    """Busy time of `cpus` (all by default) from /proc/stat; None where there is no /proc/stat."""
    wanted = {f"cpu{c}" for c in (cpus if cpus is not None else cores())}
    try:
        with open("/proc/stat") as f:
            lines = [line.split() for line in f if line.startswith("cpu") and not line.startswith("cpu ")]
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = 0
    for fields in lines:
        if fields[0] in wanted:
            values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
            busy += sum(values) - values[3] - values[4]
    return CpuSample(time.perf_counter(), busy / tick, time.process_time())


def mark() -> None:
    """Start the window over which other processes' load is measured (at import, free of cost)."""
    global _marked
    _marked = sample()


def others_busy(before: CpuSample, after: CpuSample) -> float:
    """Cores kept busy by other processes between two samples."""
    seconds = after.wall - before.wall
    if seconds <= 0:
        return 0.0
    return max(0.0, (after.busy - before.busy) - (after.own - before.own)) / seconds


def busy_cores() -> float | None:
    """Cores in use by other processes: since mark() if that window is usable, else over a fresh one."""
    before = _marked
    if before is None or not BUSY_WINDOW[0] <= time.perf_counter() - before.wall <= BUSY_WINDOW[1]:
        before = sample()
        if before is None:
            return None
        time.sleep(SAMPLE_SECONDS)
    after = sample()
    return None if after is None else others_busy(before, after)


def choose_threads(requested: int | None, current: int) -> tuple[int, str]:
    """The thread count and why: `requested` (--threads) or OMP_NUM_THREADS as given; otherwise the
    `current` count (torch's, or what the caller set), lowered to the cores other work leaves free."""
    if requested is not None:
        return requested, f"--threads {requested}"
    if os.environ.get("OMP_NUM_THREADS"):
        return current, f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
    busy = busy_cores()
    if busy is None:
        return current, "torch's default (no /proc/stat to measure other work)"
    free = max(1, len(cores()) - round(busy))
    if free >= current:
        return current, f"torch's default ({busy:.1f} cores busy with other work at start-up)"
    return free, (
        f"{busy:.1f} of {len(cores())} cores busy with other work at start-up: {free} thread(s), "
        f"not {current} (OpenMP threads that share a busy core wait for it; --threads N to override)"
    )
