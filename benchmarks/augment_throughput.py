"""Augmentation throughput (images/s): the default policy and each op, ours vs kornia.augmentation
vs a per-sample PIL pipeline, next to the default model's training throughput, in one run.

Run: python benchmarks/augment_throughput.py [--images 8192] [--repeats 3] [--steps 8] [--rgb] [--threads N]
Short check: python benchmarks/augment_throughput.py --images 1024 --repeats 1 --steps 2

Run it on an idle machine: with other processes on the 2 cores, torch's 2-thread OpenMP kernels
spin against each other and small batched ops slow down 100x (measured); --threads 1 keeps the
comparison meaningful on a busy machine.

Batches of 256 normalized images on the CPU (Fashion-MNIST's shape, or 3x32x32 with --rgb so the
colour ops have colour to change). kornia draws from torch's global RNG, not from a generator, so
it cannot be seeded per run without touching global state: that, not speed, is why the gallery's
geometric ops are our own (see the comparison this prints)."""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable

import kornia.augmentation as K
import numpy as np
import torch
from kornia.augmentation.auto import RandAugment
from PIL import Image, ImageEnhance, ImageOps

from convcoach.data.augment import parse_augment
from convcoach.data.preprocess import Normalizer
from convcoach.models import create_model

BATCH = 256
DEFAULT_POLICY = "hflip,translate:2"
OPS = [
    DEFAULT_POLICY,
    "hflip",
    "vflip",
    "translate:2",
    "resized_crop",
    "scale:0.1",
    "rotate:10",
    "shear:10",
    "stretch:0.1",
    "affine:10:10:0.1",
    "elastic:2",
    "jitter:0.4",
    "jitter:0.4:0.1",
    "pca:0.1",
    "noise:0.1",
    "cutout:8",
    "erase:0.5",
    "randaugment:2:9",
]


def kornia_equivalent(spec: str, size: int) -> torch.nn.Module | None:
    """kornia's nearest module for an op (same magnitude); None where kornia has none (fancy PCA, cutout)."""
    table: dict[str, Callable[[], torch.nn.Module]] = {
        DEFAULT_POLICY: lambda: torch.nn.Sequential(K.RandomHorizontalFlip(), K.RandomCrop((size, size), padding=2)),
        "hflip": K.RandomHorizontalFlip,
        "vflip": K.RandomVerticalFlip,
        "translate:2": lambda: K.RandomCrop((size, size), padding=2),
        "resized_crop": lambda: K.RandomResizedCrop((size, size), scale=(0.35, 1.0)),
        "scale:0.1": lambda: K.RandomAffine(0, scale=(0.9, 1.1), p=1.0),
        "rotate:10": lambda: K.RandomRotation(10.0, p=1.0),
        "shear:10": lambda: K.RandomAffine(0, shear=10.0, p=1.0),
        "stretch:0.1": lambda: K.RandomAffine(0, scale=(0.9, 1.1, 0.9, 1.1), p=1.0),
        "affine:10:10:0.1": lambda: K.RandomAffine(10.0, shear=10.0, scale=(0.9, 1.1, 0.9, 1.1), p=1.0),
        "elastic:2": lambda: K.RandomElasticTransform(p=1.0),  # Gaussian-smoothed dense noise, not a coarse grid
        "jitter:0.4": lambda: K.ColorJitter(0.4, 0.4, 0.4, 0.0, p=1.0),
        "jitter:0.4:0.1": lambda: K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0),
        "noise:0.1": lambda: K.RandomGaussianNoise(std=0.1, p=1.0),
        "erase:0.5": lambda: K.RandomErasing(scale=(0.02, 0.4), p=0.5),
        "randaugment:2:9": lambda: RandAugment(n=2, m=9),
    }
    return table[spec]() if spec in table else None


def pil_ops(spec: str) -> list[Callable[[Image.Image, random.Random], Image.Image]] | None:
    """A torchvision-style per-sample pipeline in PIL for the ops that have one."""

    def hflip(img, rng):
        return ImageOps.mirror(img) if rng.random() < 0.5 else img

    def vflip(img, rng):
        return ImageOps.flip(img) if rng.random() < 0.5 else img

    def crop(img, rng, pad=2):
        padded = ImageOps.expand(img, pad)
        left, top = rng.randint(0, 2 * pad), rng.randint(0, 2 * pad)
        return padded.crop((left, top, left + img.width, top + img.height))

    def rotate(img, rng):
        return img.rotate(rng.uniform(-10, 10), resample=Image.BILINEAR)

    def resized_crop(img, rng):
        area = rng.uniform(0.35, 1.0) * img.width * img.height
        ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        w, h = min(img.width, int(round((area * ratio) ** 0.5))), min(img.height, int(round((area / ratio) ** 0.5)))
        left, top = rng.randint(0, img.width - w), rng.randint(0, img.height - h)
        return img.crop((left, top, left + w, top + h)).resize(img.size, Image.BILINEAR)

    def jitter(img, rng):
        img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.6, 1.4))
        img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.6, 1.4))
        return ImageEnhance.Color(img).enhance(rng.uniform(0.6, 1.4)) if img.mode == "RGB" else img

    table = {
        DEFAULT_POLICY: [hflip, crop],
        "hflip": [hflip],
        "vflip": [vflip],
        "translate:2": [crop],
        "rotate:10": [rotate],
        "resized_crop": [resized_crop],
        "jitter:0.4": [jitter],
    }
    return table.get(spec)


def images_per_second(run: Callable[[], None], images: int, repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return images / min(times)  # best of the repeats: the machine is shared, contention only slows a run down


def batches(x: torch.Tensor) -> list[torch.Tensor]:
    return [x[i : i + BATCH] for i in range(0, len(x) - BATCH + 1, BATCH)]


def ours(spec: str, x: torch.Tensor, uint8: torch.Tensor, normalizer: Normalizer) -> Callable[[], None]:
    augmenter = parse_augment(spec).fit(uint8, normalizer)
    generator = torch.Generator().manual_seed(0)
    return lambda: [augmenter(b, generator) for b in batches(x)]


def kornia_run(module: torch.nn.Module, pixels: torch.Tensor) -> Callable[[], None]:
    # kornia's colour ops expect [0, 1] pixels: give every kornia op pixels, a fair (if slightly favourable) input
    return lambda: [module(b) for b in batches(pixels)]


def pil_run(ops: list, uint8: torch.Tensor, normalizer: Normalizer) -> Callable[[], None]:
    arrays = uint8.permute(0, 2, 3, 1).numpy()
    pil = [Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a) for a in arrays]
    rng = random.Random(0)

    def run() -> None:
        for start in range(0, len(pil) - BATCH + 1, BATCH):
            out = []
            for img in pil[start : start + BATCH]:
                for op in ops:
                    img = op(img, rng)
                out.append(np.asarray(img))
            batch = torch.from_numpy(np.stack(out))
            normalizer(batch.unsqueeze(1) if batch.dim() == 3 else batch.permute(0, 3, 1, 2))

    return run


def training_throughput(shape: tuple[int, int, int], steps: int) -> float:
    """Images/s of the default model's training step (forward, loss, backward, SGD step), channels-last."""
    model = create_model("resnet", shape, 10).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(BATCH, *shape).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (BATCH,))

    def run() -> None:
        for _ in range(steps):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return images_per_second(run, steps * BATCH, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8, help="training steps timed for the model's throughput")
    parser.add_argument("--rgb", action="store_true", help="3x32x32 images instead of Fashion-MNIST's 1x28x28")
    parser.add_argument("--ops", help="semicolon-separated subset of the op list (default: all)")
    parser.add_argument(
        "--threads", type=int, help="torch threads (default: torch's); on a busy machine 1 avoids OpenMP contention"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = (3, 32, 32) if args.rgb else (1, 28, 28)
    generator = torch.Generator().manual_seed(0)
    # smooth random images (noise upsampled) so colour and geometry ops act on image-like content
    small = torch.rand(args.images, shape[0], 8, 8, generator=generator)
    uint8 = (torch.nn.functional.interpolate(small, size=shape[1:], mode="bilinear") * 255).round().to(torch.uint8)
    normalizer = Normalizer.fit(uint8)
    x, pixels = normalizer(uint8), uint8.float() / 255
    count = (args.images // BATCH) * BATCH
    chosen = OPS if not args.ops else [s for s in OPS if s in args.ops.split(";")]
    rows = []
    for spec in chosen:
        row = {"op": spec, "ours": round(images_per_second(ours(spec, x, uint8, normalizer), count, args.repeats))}
        module = kornia_equivalent(spec, shape[1])
        try:
            row["kornia"] = (
                round(images_per_second(kornia_run(module, pixels), count, args.repeats))
                if module is not None
                else None
            )
        except ValueError as exc:  # e.g. kornia's hue needs 3 channels; ours skips it on grayscale
            row["kornia"], row["kornia_error"] = None, str(exc).splitlines()[0][:80]
        ops = pil_ops(spec)
        row["pil"] = round(images_per_second(pil_run(ops, uint8, normalizer), count, 1)) if ops else None
        row["kornia_over_ours"] = round(row["kornia"] / row["ours"], 2) if row["kornia"] else None
        rows.append(row)
        print(json.dumps(row), flush=True)
    train = round(training_throughput(shape, args.steps))
    print(
        json.dumps(
            {"shape": shape, "images": count, "threads": torch.get_num_threads(), "training_images_per_s": train}
        )
    )
    print(f"\n| op | ours img/s | kornia img/s | PIL per-sample img/s | kornia/ours |  (model training: {train} img/s)")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| `{row['op']}` | {row['ours']} | {row['kornia'] or 'n/a'} | {row['pil'] or 'n/a'} "
            f"| {row['kornia_over_ours'] or 'n/a'} |"
        )


if __name__ == "__main__":
    main()
