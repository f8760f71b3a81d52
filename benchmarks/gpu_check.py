"""The CUDA check (issue 25, part 6): what `benchmarks/gpu_check.sh` runs once the project is installed.

Steps, each under its own time limit and all inside `--deadline` seconds (default 450, so the whole
check with the install ends within 8 minutes):
  peak      the GPU's bf16 matmul TFLOP/s (8192^3, best of 10), and the default net's FLOPs per image
  tests     pytest -m cuda
  default   `convcoach train --device cuda` (bf16 autocast, channels_last: the defaults on CUDA)
  compile   the same with --compile
  long      `--recipe long --time-budget 3`
  ddp       torchrun --nproc_per_node 1: DDP on one GPU over NCCL, 2 epochs
  resume    a run killed with SIGKILL after its first checkpoint, resumed, against an uninterrupted one
Without CUDA every step but `peak`'s FLOP count is "skipped"; `--dry-run` only writes the plan.
The JSON (`--out`) has images/s, accuracy and seconds per step, the peak and the default run's
achieved TFLOP/s as a ratio of it.

    python benchmarks/gpu_check.py [--out gpu_check.json] [--dry-run] [--deadline 450] [--data fashion-mnist]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# each step's own limit in seconds (the deadline may cut it shorter)
LIMITS = {"tests": 120, "default": 150, "compile": 200, "long": 230, "ddp": 90, "resume": 120}


class Check:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.start = time.monotonic()
        self.work = Path(tempfile.mkdtemp(prefix="convcoach-gpu-check-"))
        self.result: dict = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "dry_run": args.dry_run, "steps": {}}

    def left(self) -> float:
        return self.args.deadline - (time.monotonic() - self.start)

    def convcoach(self, *flags: str) -> list[str]:
        return [sys.executable, "-m", "convcoach", *flags]

    def train_flags(self, out: Path, *flags: str) -> list[str]:
        return ["train", "--device", "cuda", "--data", self.args.data, "--quiet", "--out", str(out), *flags]

    def run(self, name: str, command: list[str], out: Path | None = None) -> dict:
        """Run one step's command under its limit; read the run's summary.json and env.json if any."""
        limit = min(LIMITS[name], self.left() - 5)
        step: dict = {"command": " ".join(command)}
        self.result["steps"][name] = step
        if self.args.dry_run:
            step["status"] = "planned"
            return step
        if not self.result["cuda"]:
            step["status"] = "skipped: no CUDA device"
            return step
        if limit < 20:
            step["status"] = "skipped: the deadline leaves no time"
            return step
        began = time.monotonic()
        try:
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=limit)
            step["status"] = "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"
            if done.returncode != 0:
                step["stderr_tail"] = done.stderr[-2000:]
        except subprocess.TimeoutExpired:
            step["status"] = f"timeout after {limit:.0f} s"
        step["seconds"] = round(time.monotonic() - began, 1)
        if out is not None:
            step.update(run_figures(out))
        return step

    def peak(self) -> None:
        import torch

        self.result["torch"] = torch.__version__
        self.result["cuda"] = torch.cuda.is_available()
        self.result["flops_per_image"] = default_net_flops_per_image()
        if not self.result["cuda"] or self.args.dry_run:
            self.result["gpu"] = None
            self.result["bf16_matmul_tflops"] = None
            return
        self.result["gpu"] = torch.cuda.get_device_name(0)
        self.result["cuda_version"] = torch.version.cuda
        n = 8192
        a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
        a @ b
        torch.cuda.synchronize()
        best = float("inf")
        for _ in range(10):
            began = time.perf_counter()
            a @ b
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - began)
        self.result["bf16_matmul_tflops"] = round(2 * n**3 / best / 1e12, 1)
        del a, b
        torch.cuda.empty_cache()

    def resume(self) -> None:
        """Kill a run with SIGKILL once its first last.pt exists, resume it, compare with an unbroken run."""
        flags = ["--epochs", "3", "--subset", "12000", "--tta", "none", "--no-report"]
        whole, broken = self.work / "unbroken", self.work / "killed"
        commands = [self.convcoach(*self.train_flags(p, *flags)) for p in (whole, broken)]
        commands.append(self.convcoach("train", "--resume", str(broken), "--quiet"))
        if self.args.dry_run or not self.result["cuda"]:
            step = self.run("resume", commands[-1])
            step["command"] = "; ".join(" ".join(c) for c in commands)  # unbroken; killed after epoch 1; resumed
            return
        step = self.run("resume", commands[0], whole)
        if step["status"] != "ok":
            return
        killed = subprocess.Popen(commands[1], cwd=ROOT)
        deadline = time.monotonic() + min(60, self.left() - 30)
        while not (broken / "last.pt").exists() and killed.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)  # into the second epoch
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        epochs_before = checkpoint_epoch(broken)
        resumed = self.run("resume", commands[2], broken)
        resumed["killed_after_epochs"] = epochs_before
        resumed["unbroken_accuracy"] = step.get("test_accuracy")
        resumed["bit_identical"] = same_weights(whole / "best.pt", broken / "best.pt")

    def main(self) -> dict:
        self.peak()
        self.args.data = self.result["data"] = local_data(self.args.data)
        a = self.work
        self.run("tests", [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", "tests"])
        self.run("default", self.convcoach(*self.train_flags(a / "default")), a / "default")
        self.run("compile", self.convcoach(*self.train_flags(a / "compile", "--compile")), a / "compile")
        long = self.train_flags(a / "long", "--recipe", "long", "--time-budget", "3")
        self.run("long", self.convcoach(*long), a / "long")
        ddp = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]
        ddp += ["-m", "convcoach"]
        self.run("ddp", [*ddp, *self.train_flags(a / "ddp", "--epochs", "2", "--no-report")], a / "ddp")
        self.resume()
        default = self.result["steps"]["default"]
        peak, per_image = self.result.get("bf16_matmul_tflops"), self.result["flops_per_image"]
        if peak and default.get("images_per_second"):
            achieved = default["images_per_second"] * per_image / 1e12
            self.result["default_achieved_tflops"] = round(achieved, 2)
            self.result["default_ratio_of_peak"] = round(achieved / peak, 4)
        self.result["total_seconds"] = round(time.monotonic() - self.start, 1)
        statuses = [s["status"] for s in self.result["steps"].values()]
        self.result["ok"] = all(s in ("ok", "planned") or s.startswith("skipped") for s in statuses)
        return self.result


def local_data(name: str) -> str:
    """`name`, or digits (in scikit-learn) where Fashion-MNIST is not on this machine: no download here."""
    from convcoach.data.fetch import candidate_dirs

    if name != "fashion-mnist" or any(d.is_dir() and any(d.glob("*idx*")) for d in candidate_dirs(name, None)):
        return name
    return "digits"


def run_figures(out: Path) -> dict:
    """Accuracy, images/s and the precision of a finished run directory."""
    figures: dict = {}
    try:
        summary = json.loads((out / "summary.json").read_text())
        env = json.loads((out / "env.json").read_text())
    except (OSError, ValueError):
        return figures
    figures["test_accuracy"] = summary.get("test_accuracy")
    figures["epochs"] = summary.get("epochs_run")
    figures["precision"] = env.get("precision")
    figures["processes"] = env.get("processes")
    import yaml

    batch = yaml.safe_load((out / "config.yaml").read_text()).get("batch_size", 256)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    epochs = [m for m in lines if m.get("kind") == "epoch"]
    speeds, step, clock = [], 0, 0.0
    for m in epochs:  # images/s per epoch (its validation included); "time" is the run's training clock
        if m["time"] > clock:
            speeds.append((m["step"] - step) * batch / (m["time"] - clock))
        step, clock = m["step"], m["time"]
    if speeds:  # the median epoch: the first holds compilation and warm-up
        figures["images_per_second"] = round(sorted(speeds)[len(speeds) // 2])
    return figures


def checkpoint_epoch(run: Path) -> int | None:
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return None
    return sum(1 for line in lines if '"kind": "epoch"' in line) or None


def same_weights(a: Path, b: Path) -> bool | None:
    import torch

    try:
        x = torch.load(a, map_location="cpu", weights_only=True)["model"]
        y = torch.load(b, map_location="cpu", weights_only=True)["model"]
    except (OSError, KeyError, RuntimeError):
        return None
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def default_net_flops_per_image() -> float:
    """Training FLOPs per image of the default net (forward + backward), counted on the CPU."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from convcoach import TrainConfig
    from convcoach.models.spec import build_model, model_spec

    model = build_model(model_spec(TrainConfig(), (1, 28, 28), 10))
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / 8


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "gpu_check.json")
    parser.add_argument("--dry-run", action="store_true", help="write the plan (every command) without running it")
    parser.add_argument("--deadline", type=float, default=450.0, help="seconds for all the steps together")
    parser.add_argument("--data", default="fashion-mnist", help="the set (digits without Fashion-MNIST)")
    args = parser.parse_args()
    result = Check(args).main()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
