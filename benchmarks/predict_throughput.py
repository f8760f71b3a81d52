"""`convcoach predict` over a folder of 10,000 photo-like JPEGs (300-800 px) to CSV: images/s and peak memory.

Generates the images (smooth random colour fields with one shape per class, in class subfolders, in parallel),
builds an untrained convcoach ResNet at 64 px (throughput does not depend on the weights) unless --checkpoint
is given, then runs `convcoach predict FOLDER --out predictions.csv` in a fresh process and reports its wall
time, images/s and peak RSS (VmHWM) next to what the decoded images would take if held all at once.

    python benchmarks/predict_throughput.py [--images 10000] [--folder DIR] [--checkpoint RUN] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

RESULTS = Path(__file__).resolve().parent / "results" / "predict_throughput.json"
SHAPES = ("ellipse", "rectangle", "triangle", "cross")

# the measured command runs in its own process; VmHWM is that process's peak resident memory (ru_maxrss
# would not do: Linux carries it over from the parent through fork and exec)
CHILD = """
import json, sys, time
from convcoach.cli import main

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])

argv = json.loads(sys.argv[1])
before = status("VmRSS")
start = time.perf_counter()
code = main(argv)
seconds = time.perf_counter() - start
print(json.dumps({"code": code, "seconds": seconds, "rss_before_kb": before, "peak_rss_kb": status("VmHWM")}))
"""


def make_image(job: tuple[int, int, int, int, int, str]) -> int:
    """One JPEG: a bicubic-upsampled 4x4 colour field and a filled shape in the class's kind; returns its bytes."""
    index, label, width, height, seed, path = job
    rng = np.random.default_rng(seed)
    field = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((width, height), Image.BICUBIC)
    draw = ImageDraw.Draw(field)
    x0, y0 = rng.uniform(0.05, 0.45) * width, rng.uniform(0.05, 0.45) * height
    x1, y1 = x0 + rng.uniform(0.3, 0.5) * width, y0 + rng.uniform(0.3, 0.5) * height
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    kind = SHAPES[label % len(SHAPES)]
    if kind == "ellipse":
        draw.ellipse((x0, y0, x1, y1), fill=colour)
    elif kind == "rectangle":
        draw.rectangle((x0, y0, x1, y1), fill=colour)
    elif kind == "triangle":
        draw.polygon([(x0, y1), ((x0 + x1) / 2, y0), (x1, y1)], fill=colour)
    else:
        bar = (x1 - x0) / 5
        draw.rectangle(((x0 + x1) / 2 - bar, y0, (x0 + x1) / 2 + bar, y1), fill=colour)
        draw.rectangle((x0, (y0 + y1) / 2 - bar, x1, (y0 + y1) / 2 + bar), fill=colour)
    field.save(path, quality=90)
    return os.path.getsize(path)


def generate(folder: Path, count: int, classes: int, low: int, high: int, seed: int) -> dict:
    """`count` JPEGs in folder/class_K/, sizes uniform in [low, high] per side, made by a process per core."""
    rng = np.random.default_rng(seed)
    jobs = []
    for index in range(count):
        label = index % classes
        path = folder / f"class_{label}" / f"img_{index:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        width, height = (int(v) for v in rng.integers(low, high + 1, 2))
        jobs.append((index, label, width, height, seed * 1_000_003 + index, str(path)))
    start = time.perf_counter()
    with Pool(os.cpu_count()) as pool:
        sizes = pool.map(make_image, jobs, chunksize=64)
    pixels = sum(w * h for _, _, w, h, _, _ in jobs)
    return {
        "generate_seconds": round(time.perf_counter() - start, 1),
        "jpeg_megabytes": round(sum(sizes) / 2**20, 1),
        "mean_megapixels": round(pixels / count / 1e6, 3),
    }


def build_checkpoint(path: Path, size: int, classes: int) -> None:
    """An untrained convcoach ResNet at size x size, saved as a checkpoint `load_trained` reads."""
    import torch

    from convcoach import __version__
    from convcoach.config import TrainConfig
    from convcoach.data.preprocess import Normalizer
    from convcoach.models.spec import build_model, model_spec
    from convcoach.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    config = TrainConfig(model="resnet", image_size=size)
    spec = model_spec(config, (3, size, size), classes)
    model = build_model(spec).eval()
    payload = {
        "config": config.to_dict(),
        "model": spec,
        "classes": [f"class_{k}" for k in range(classes)],
        "normalizer": Normalizer([0.5, 0.5, 0.5], [0.25, 0.25, 0.25]).state_dict(),
        "model_state": model.state_dict(),
        "versions": {"convcoach": __version__, "torch": str(torch.__version__)},
    }
    save_checkpoint(payload, path)


def run_predict(checkpoint: str, folder: str, out: Path, batch_size: int, workers: int | None) -> dict:
    argv = ["predict", "--checkpoint", checkpoint, folder, "--out", str(out), "--batch-size", str(batch_size)]
    argv += ["--workers", str(workers)] if workers else []
    result = subprocess.run([sys.executable, "-c", CHILD, json.dumps(argv)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"predict failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() is empty on Linux)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--min-size", type=int, default=300)
    parser.add_argument("--max-size", type=int, default=800)
    parser.add_argument("--folder", help="where the JPEGs go (kept; reused when it already holds --images files)")
    parser.add_argument("--checkpoint", help="a convcoach checkpoint (default: an untrained ResNet at --size)")
    parser.add_argument("--size", type=int, default=64, help="the built ResNet's input size")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, help="decoding threads (default: predict's own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="predict-throughput-"))
    folder = Path(args.folder) if args.folder else scratch / "photos"
    try:
        existing = len(list(folder.rglob("*.jpg"))) if folder.is_dir() else 0
        generated = (
            {"generate_seconds": None, "reused_folder": True}
            if existing == args.images
            else generate(folder, args.images, args.classes, args.min_size, args.max_size, args.seed)
        )
        checkpoint = args.checkpoint or str(scratch / "resnet.pt")
        if not args.checkpoint:
            build_checkpoint(Path(checkpoint), args.size, args.classes)
        # a small run first (the class_0 images numbered below 2000: a 20th of the set): its peak memory
        # against the full run's shows what grows with the number of images
        small_out = scratch / "small.csv"
        small = run_predict(
            checkpoint, str(folder / "class_0" / "img_0[01]*.jpg"), small_out, args.batch_size, args.workers
        )
        out = scratch / "predictions.csv"
        measured = run_predict(checkpoint, str(folder), out, args.batch_size, args.workers)
        with open(out, newline="") as handle:
            rows = list(csv.DictReader(handle))
        with open(small_out, newline="") as handle:
            small_rows = sum(1 for _ in csv.DictReader(handle))
        import torch

        from convcoach.infer import load_trained

        channels, height, width = load_trained(checkpoint).in_shape
        result = {
            "command": " ".join(
                ["convcoach predict --checkpoint CKPT FOLDER --out predictions.csv --batch-size", str(args.batch_size)]
                + (["--workers", str(args.workers)] if args.workers else [])
            ),
            "images": args.images,
            "image_sides_px": [args.min_size, args.max_size],
            **generated,
            "model": args.checkpoint or f"untrained convcoach resnet, {channels}x{height}x{width} input",
            "csv_rows": len(rows),
            "skipped": sum(1 for row in rows if row["error"]),
            "predict_seconds": round(measured["seconds"], 1),
            "images_per_second": round(args.images / measured["seconds"], 1),
            "peak_rss_mb": round(measured["peak_rss_kb"] / 1024, 1),
            "rss_after_imports_mb": round(measured["rss_before_kb"] / 1024, 1),
            "small_run": {
                "images": small_rows,
                "images_per_second": round(small_rows / small["seconds"], 1),
                "peak_rss_mb": round(small["peak_rss_kb"] / 1024, 1),
            },
            # for scale: every image decoded at the model's size at once, and at its own size (what a
            # decode-all-then-resize approach would hold)
            "all_images_at_model_size_mb": round(args.images * channels * height * width / 2**20, 1),
            "all_images_full_size_mb": (
                round(generated["mean_megapixels"] * 1e6 * 3 * args.images / 2**20, 1)
                if "mean_megapixels" in generated
                else None
            ),
            "host": {
                "cpu": cpu_name(),
                "cores": os.cpu_count(),
                "torch": str(torch.__version__),
                "python": platform.python_version(),
            },
        }
        assert result["csv_rows"] == args.images, result
        print(json.dumps(result, indent=2))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
