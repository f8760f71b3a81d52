"""Device and numeric precision: cuda when present; bf16 autocast where the hardware runs it natively."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

import torch

from .errors import ConfigError

log = logging.getLogger("convcoach")

TIMING_ROUNDS = 3
# native bf16 is the choice unless bf16 times over 10% slower than fp32. Conv nets time 0.55-0.77x of
# fp32 on an idle AVX512-BF16 CPU, but a loaded host was seen to time them even ("71 vs 70 ms"), so the
# timing only vetoes a clear loss (tiny nets where autocast's casts cost more than the matmuls save)
BF16_MAX_SLOWDOWN = 1.10
BF16_CLEAR_WIN = 0.80  # a first timing this far under fp32 is bf16's win however the other rounds fall


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' requested but CUDA is not available; use --device cpu or auto")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = torch.device("meta")  # not a device name at all
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N; got '{name}'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(
            f"device '{name}' does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return device


def cpu_has_native_bf16() -> bool:
    """True where oneDNN has bf16 kernels for this CPU (AVX512-BF16 or AMX), read from torch itself."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def has_native_bf16(device: torch.device) -> bool:
    """Native bf16 on this device: AVX512-BF16 or AMX on a CPU; on CUDA, Ampere on (torch's default
    check also says yes where the GPU only emulates bf16)."""
    if device.type == "cuda":
        with torch.cuda.device(device):
            return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and cpu_has_native_bf16()


def resolve_precision(
    name: str, device: torch.device, time_step: Callable[[str], float] | None = None
) -> tuple[str, str]:
    """(precision, reason). 'auto' asks the hardware; on CPUs with native bf16 a few timed steps can veto
    bf16 when it is clearly slower."""
    if device.type == "cuda":
        if name == "auto":
            return (
                ("bf16", "CUDA device supports bf16")
                if has_native_bf16(device)  # on this run's GPU
                else ("fp16", "CUDA without native bf16: fp16 with a grad scaler")
            )
        return name, "requested"
    if name == "fp16":
        raise ConfigError("precision fp16 needs a CUDA device; on CPU use bf16, fp32 or auto")
    if name != "auto":
        if name == "bf16" and not cpu_has_native_bf16():
            log.warning("this CPU has no native bf16 (AVX512-BF16/AMX): bf16 will be emulated and slower than fp32")
        return name, "requested"
    if not cpu_has_native_bf16():
        return "fp32", f"CPU capability {torch.backends.cpu.get_cpu_capability()} has no native bf16"
    if time_step is None:
        return "bf16", "CPU has native bf16"
    fp32, bf16 = compare_steps(time_step)
    if bf16 > BF16_MAX_SLOWDOWN * fp32:
        return "fp32", f"CPU has bf16 but a timed step was slower ({bf16 * 1e3:.0f} vs {fp32 * 1e3:.0f} ms in fp32)"
    return "bf16", f"CPU has native bf16 and a timed step took {bf16 * 1e3:.0f} ms vs {fp32 * 1e3:.0f} ms in fp32"


def compare_steps(time_step: Callable[[str], float], rounds: int = TIMING_ROUNDS) -> tuple[float, float]:
    """(fp32, bf16) seconds per step: the fastest of `rounds` alternating timings of each. Alternating
    puts both under the same host state, and the minimum ignores rounds another process slowed (a
    single pair of timings on a shared host was seen to put bf16 at 0.65-0.84x of fp32 from run to run).
    A first pair that puts bf16 under BF16_CLEAR_WIN of fp32 ends the timing there (it takes ~0.7 of
    the ~2 s the three rounds cost the default net): no later round could make that a veto."""
    fp32, bf16 = [], []
    for _ in range(rounds):
        fp32.append(time_step("fp32"))
        bf16.append(time_step("bf16"))
        if bf16[0] <= BF16_CLEAR_WIN * fp32[0]:
            break
    return min(fp32), min(bf16)


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def timed(step: Callable[[], None], repeats: int = 3, slow: float = 0.5) -> float:
    """Median seconds of `step` after one warm-up call; one timed call when the warm-up took over
    `slow` seconds (a 224 px network: its step time is not noise-dominated, and each costs a second)."""
    start = time.perf_counter()
    step()
    if time.perf_counter() - start > slow:
        repeats = 1
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]
