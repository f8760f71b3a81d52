"""`convcoach augment`: the grid of originals and augmented draws."""

from __future__ import annotations

import torch
from PIL import Image

from convcoach.cli import main
from convcoach.data.gallery import augmented_grid
from convcoach.data.preprocess import Normalizer


def test_grid_holds_the_originals_then_the_draws_in_pixel_units():
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    normalizer = Normalizer.fit(images)
    grid = augmented_grid(images, "hflip:1,jitter:0.3", normalizer, images, rows=2)
    assert grid.shape == (3, 5, 3, 8, 8)
    assert torch.allclose(grid[0], images / 255, atol=1e-5)
    assert grid.min() >= 0 and grid.max() <= 1
    assert not torch.allclose(grid[1], grid[2])  # two different draws


def test_augment_command_writes_a_png(blobs_npz, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert (
        main(
            [
                "augment",
                "--data",
                f"npz:{blobs_npz}",
                "--augment",
                "rotate:15,pca:0.1",
                "--out",
                str(out),
                "--n",
                "4",
                "--rows",
                "2",
            ]
        )
        == 0
    )
    assert "wrote" in capsys.readouterr().out
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width > image.height > 100


def test_augment_command_names_a_bad_op(blobs_npz, tmp_path, capsys):
    assert (
        main(["augment", "--data", f"npz:{blobs_npz}", "--augment", "spin:10", "--out", str(tmp_path / "g.png")]) == 2
    )
    assert "unknown augmentation 'spin'" in capsys.readouterr().err
