"""Issue 24's transfer figures on this CPU: the ImageNet backbones' forward throughput at 224 px
(ResNet-18/50, fp32 and bf16 where the CPU has native bf16), and the cached linear probe against
naive end-to-end training of the frozen network on the same 2,000 images.

    python benchmarks/transfer_probe.py [--epochs 5] [--out benchmarks/results/transfer_probe.json]

No weights can be downloaded here: the backbones carry seeded random weights of torchvision's shapes
(found offline under torchvision's file name in $CONVCOACH_WEIGHTS), which cost exactly what the real ones cost; the
accuracies are therefore not ImageNet transfer accuracies, only the times are the claim."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from convcoach.models.imagenet import imagenet_architecture
from convcoach.models.weights import IMAGENET_WEIGHTS
from convcoach.precision import cpu_has_native_bf16

FMNIST = Path("/usr/share/datasets/fashion-mnist")


def host() -> dict:
    flags = []
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if "Model name" in line), "?")
        flag_line = next((line for line in text.splitlines() if line.startswith("Flags")), "")
        flags = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flag_line]
    except (OSError, subprocess.CalledProcessError):
        model = platform.processor()
    return {
        "cpu": model,
        "flags": flags,
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


@torch.no_grad()
def forward_throughput(name: str, precision: str, batch: int = 32, batches: int = 4) -> float:
    """Images/s of the eval-mode forward pass at 224 px (one warm-up batch not counted)."""
    model = imagenet_architecture(name).eval().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, 224, 224).to(memory_format=torch.channels_last)
    context = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else torch.no_grad()
    with context:
        model(x)
        start = time.perf_counter()
        for _ in range(batches):
            model(x)
    return batch * batches / (time.perf_counter() - start)


def fmnist_npz(path: Path, train: int = 2000, test: int = 500) -> None:
    def read(stem: str, offset: int) -> np.ndarray:
        return np.frombuffer(gzip.open(FMNIST / f"{stem}.gz").read(), np.uint8, offset=offset)

    x = read("train-images-idx3-ubyte", 16).reshape(-1, 28, 28)
    y = read("train-labels-idx1-ubyte", 8).astype(np.int64)
    rng = np.random.default_rng(0)
    keep = rng.permutation(len(x))[: train + test]
    np.savez(path, x=x[keep[:train]], y=y[keep[:train]], x_test=x[keep[train:]], y_test=y[keep[train:]])


@torch.no_grad()
def calibrated_resnet18(npz: Path) -> dict:
    """Seeded random ResNet-18 weights whose BatchNorm statistics are estimated on 256 of the images
    (as trained weights' are), so activations keep a trained network's scale instead of growing."""
    torch.manual_seed(0)
    model = imagenet_architecture("resnet18")
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a cumulative average over the calibration batches
    x = torch.from_numpy(np.load(npz)["x"][:256]).float().div(255)[:, None].expand(-1, 3, -1, -1)
    x = torch.nn.functional.interpolate(x, size=224, mode="bilinear")
    mean, std = (
        torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
    )
    model.train()
    for batch in ((x - mean) / std).split(64):
        model(batch)
    return model.state_dict()


def run(argv: list[str], env: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "convcoach", *argv], check=True, env=env, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    out = Path(argv[argv.index("--out") + 1])
    return seconds, json.loads((out / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the end-to-end frozen run")
    parser.add_argument("--out", default="benchmarks/results/transfer_probe.json")
    args = parser.parse_args()
    result: dict = {"host": host(), "forward_224px_images_per_second": {}}
    precisions = ["fp32", "bf16"] if cpu_has_native_bf16() else ["fp32"]
    for name in ("resnet18", "resnet50"):
        for precision in precisions:
            speed = forward_throughput(name, precision)
            result["forward_224px_images_per_second"][f"{name} {precision}"] = round(speed, 1)
            print(f"{name} {precision}: {speed:.1f} images/s at 224 px", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        weights = root / "weights"
        weights.mkdir()
        fmnist_npz(root / "fm.npz")
        # found offline under torchvision's own file name, as a user's copy would be
        torch.save(calibrated_resnet18(root / "fm.npz"), weights / IMAGENET_WEIGHTS["resnet18"].file)
        env = {**os.environ, "CONVCOACH_WEIGHTS": str(weights), "CONVCOACH_CACHE": str(root / "cache")}
        common = ["--data", f"npz:{root / 'fm.npz'}", "--image-size", "224", "--no-report", "--quiet", "--seed", "0"]
        source = ["--from", "imagenet:resnet18"]
        probe_s, probe = run(["finetune", *source, *common, "--strategy", "linear", "--out", str(root / "p")], env)
        again_s, again = run(["finetune", *source, *common, "--strategy", "linear", "--out", str(root / "p2")], env)
        e2e = ["--strategy", "linear", "--linear", "epochs", "--head-init", "random", "--epochs", str(args.epochs)]
        e2e += ["--optimizer", "nesterov", "--lr", "0.01", "--batch-size", "64"]  # plain SGD on the head
        e2e_s, end_to_end = run(["finetune", *source, *common, *e2e, "--out", str(root / "e")], env)
    cached = probe["transfer"]["cached_probe"]
    result["probe_vs_end_to_end"] = {
        "images": {k: probe["data"][k] for k in ("train", "val", "test")},
        "cached_probe": {
            "wall_seconds": round(probe_s, 1),
            "backbone_forward_seconds": cached["forward_seconds"],
            "images_forwarded": cached["images_forwarded"],
            "backbone_images_per_second": cached["images_per_second"],
            "head_fit_seconds": cached["fit_seconds"],
            "test_accuracy": probe["test_accuracy"],
        },
        "cached_probe_second_run": {
            "wall_seconds": round(again_s, 1),
            "cache_hits": again["transfer"]["cached_probe"]["cache_hits"],
            "test_accuracy": again["test_accuracy"],
        },
        f"end_to_end_frozen_{args.epochs}_epochs": {
            "wall_seconds": round(e2e_s, 1),
            "train_seconds": round(end_to_end["train_seconds"], 1),
            "test_accuracy": end_to_end["test_accuracy"],
        },
        "weights": "seeded random weights of resnet18's shapes (no download here): times only",
    }
    print(json.dumps(result["probe_vs_end_to_end"], indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
