"""The data package's subcommand: `augment`, a grid of training images and augmented draws of them, to look
before training (registered here with @command; the drawing is gallery.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..argtypes import at_least
from ..commands import command
from ..errors import ConfigError
from ..run_dirs import prepare_out_file
from .gallery import augmented_grid, save_grid
from .preprocess import Normalizer
from .sources import SourceOptions, load_data


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


@command(
    "augment",
    "draw a grid of training images and augmented draws of them (PNG), to look before training",
    add_gallery_flags,
    order=40,
)
def run_gallery(args: argparse.Namespace) -> int:
    if args.n > MAX_IMAGES or args.rows > 64:
        raise ConfigError(
            f"--n (at most {MAX_IMAGES}) and --rows (at most 64) make one figure; got {args.n} and {args.rows}"
        )
    if Path(args.out).is_dir() or Path(args.out).suffix.lower() not in GRID_FORMATS:
        raise ConfigError(f"--out {args.out}: give an image file name ending in {', '.join(GRID_FORMATS)}")
    prepare_out_file(args.out)
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
