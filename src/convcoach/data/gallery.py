"""`convcoach augment`: a grid of training images and augmented draws of them, to look before training."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..argtypes import at_least
from ..errors import ConfigError
from .augment import parse_augment
from .preprocess import Normalizer
from .sources import SourceOptions, load_data


def augmented_grid(images: torch.Tensor, spec: str | list[str], normalizer: Normalizer, train_images: torch.Tensor,
                   rows: int = 3, seed: int = 0) -> torch.Tensor:
    """(1 + rows, N, C, H, W) pixels in [0, 1]: the originals, then `rows` augmented draws of them."""
    augmenter = parse_augment(spec)
    if not augmenter.ops:
        raise ConfigError("augment: no augmentation given (e.g. --augment hflip,rotate:10)")
    augmenter.fit(train_images, normalizer)
    generator = torch.Generator().manual_seed(seed)
    x = normalizer(images)
    draws = [x] + [augmenter(x, generator) for _ in range(rows)]
    mean = torch.tensor(normalizer.mean).view(1, -1, 1, 1)
    std = torch.tensor(normalizer.std).view(1, -1, 1, 1)
    return torch.stack([(d * std + mean).clamp(0, 1) for d in draws])


def save_grid(grid: torch.Tensor, path: str | Path, title: str) -> None:
    """One row per draw (the first the originals), one column per image; a PNG drawn by matplotlib's
    Agg canvas (a bare Figure: no pyplot state, no display needed)."""
    from matplotlib.figure import Figure

    rows, columns = grid.shape[:2]
    figure = Figure(figsize=(1.1 * columns, 1.1 * rows + 0.4))
    axes = figure.subplots(rows, columns, squeeze=False)
    for row in range(rows):
        for column in range(columns):
            image = grid[row, column].permute(1, 2, 0).numpy()
            axis = axes[row][column]
            axis.imshow(image[:, :, 0] if image.shape[2] == 1 else image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
        axes[row][0].set_ylabel("original" if row == 0 else f"draw {row}", fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def add_gallery_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="fashion-mnist", help="dataset name, imagefolder:PATH, npz:PATH or a folder")
    parser.add_argument("--data-dir")
    parser.add_argument("--image-size", type=at_least(1))
    parser.add_argument("--augment", required=True, help="comma-separated ops, e.g. hflip,crop:4,rotate:10,jitter:0.4")
    parser.add_argument("--out", default="augment.png", help="the PNG to write (default augment.png)")
    parser.add_argument("--n", type=at_least(1), default=8, help="images per row (default 8)")
    parser.add_argument("--rows", type=at_least(1), default=3, help="augmented draws of each image (default 3)")
    parser.add_argument("--preprocess", default="meanstd", choices=["meanstd", "mean", "none"])
    parser.add_argument("--seed", type=at_least(0), default=0)


GRID_FORMATS = (".png", ".jpg", ".jpeg", ".pdf", ".svg")
MAX_IMAGES = 256  # a grid wider than this is unreadable and slow to draw


def run_gallery(args: argparse.Namespace) -> int:
    if args.n > MAX_IMAGES or args.rows > 64:
        raise ConfigError(f"--n (at most {MAX_IMAGES}) and --rows (at most 64) make one figure; got {args.n} and {args.rows}")
    if Path(args.out).is_dir() or Path(args.out).suffix.lower() not in GRID_FORMATS:
        raise ConfigError(f"--out {args.out}: give an image file name ending in {', '.join(GRID_FORMATS)}")
    bundle = load_data(args.data, SourceOptions.from_config(args), 0.0)
    train = bundle.train
    if train.images is None:
        raise ConfigError(f"'{args.data}' is larger than memory; pick a subset folder to preview")
    normalizer = Normalizer.fit(train.images, args.preprocess)
    shown = train.images[: args.n]
    grid = augmented_grid(shown, args.augment, normalizer, train.images, args.rows, args.seed)
    save_grid(grid, args.out, f"{bundle.name}: {args.augment}")
    print(f"wrote {args.out}: {len(shown)} images, the originals then {args.rows} draws of '{args.augment}'")
    return 0
