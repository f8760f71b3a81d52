"""The augmentation grid behind `convcoach augment` (data/cli.py): training images and augmented draws of them."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ConfigError
from .augment import parse_augment
from .preprocess import Normalizer


def augmented_grid(
    images: torch.Tensor,
    spec: str | list[str],
    normalizer: Normalizer,
    train_images: torch.Tensor,
    rows: int = 3,
    seed: int = 0,
) -> torch.Tensor:
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
            axis.imshow(
                image[:, :, 0] if image.shape[2] == 1 else image, cmap="gray", vmin=0, vmax=1, interpolation="nearest"
            )
            axis.set_xticks([])
            axis.set_yticks([])
        axes[row][0].set_ylabel("original" if row == 0 else f"draw {row}", fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
