"""Figures as PNG bytes, drawn on matplotlib's Agg canvas (no pyplot: no global state, no display)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

Series = tuple[Sequence[float], Sequence[float]]
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def label(text: object) -> str:
    """A user string safe for matplotlib: `$` would start mathtext (and an odd count raises)."""
    return str(text).replace("$", r"\$")


def new_figure(
    width: float, height: float, left: float = 0.7, right: float = 0.2, bottom: float = 0.5, top: float = 0.35
) -> Figure:
    """A figure with fixed margins in inches: ~2.5x faster to draw than matplotlib's constrained layout."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height)
    return fig


def to_png(fig: Figure, dpi: int = 90) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def smooth(values: Sequence[float], weight: float | None = None) -> list[float]:
    """Bias-corrected exponential moving average (TensorBoard's smoothing); weight from the length when None."""
    n = len(values)
    if weight is None:
        weight = min(0.98, max(0.0, 1.0 - 10.0 / max(n, 1)))
    out, average = [], 0.0
    for step, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        out.append(average / (1 - weight**step) if weight > 0 else value)
    return out


def line_plot(
    series: dict[str, Series],
    title: str,
    xlabel: str,
    ylabel: str,
    log_y: bool = False,
    faint: Sequence[str] = (),
    size: tuple[float, float] = (6.0, 3.4),
) -> bytes:
    """One line per named series; names in `faint` are drawn thin and light
    (e.g. the raw loss behind its smoothed curve)."""
    fig = new_figure(*size)
    ax = fig.add_subplot()
    for index, (name, (xs, ys)) in enumerate(series.items()):
        style = {"alpha": 0.3, "linewidth": 0.8} if name in faint else {"linewidth": 1.6}
        marker = "o" if len(xs) <= 30 and name not in faint else None
        ax.plot(
            list(xs),
            list(ys),
            label=label(name),
            color=PALETTE[index % len(PALETTE)],
            marker=marker,
            markersize=3,
            **style,
        )
    if log_y and all(min(ys, default=1) > 0 for _, ys in series.values()):
        ax.set_yscale("log")
    if all(float(x).is_integer() for xs, _ in series.values() for x in xs):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs and iterations: no 1.25
    ax.set_title(label(title))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=7, loc="best")
    return to_png(fig)


def bar_plot(names: Sequence[str], groups: dict[str, Sequence[float]], title: str, ylabel: str) -> bytes:
    """Grouped vertical bars: one group per name, one bar per entry of `groups`."""
    rotate = len(names) > 5
    fig = new_figure(
        max(4.0, min(12.0, 0.5 * len(names) * max(1, len(groups)) + 2)),
        3.4 + (0.8 if rotate else 0),
        bottom=1.3 if rotate else 0.5,
    )
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(groups))
    for index, (group, values) in enumerate(groups.items()):
        xs = np.arange(len(names)) + (index - (len(groups) - 1) / 2) * width
        ax.bar(xs, list(values), width, label=label(group), color=PALETTE[index % len(PALETTE)])
    ax.set_xticks(
        np.arange(len(names)),
        [label(n)[:20] for n in names],
        rotation=45 if rotate else 0,
        ha="right" if rotate else "center",
        fontsize=7,
    )
    ax.set_title(label(title))
    ax.set_ylabel(ylabel)
    if len(groups) > 1:
        ax.legend(fontsize=7)
    return to_png(fig)


def confusion_plot(matrix: torch.Tensor, classes: Sequence[str]) -> bytes:
    """Row-normalized confusion matrix (row = true class) with the raw counts written in each cell."""
    counts = matrix.double()
    rates = (counts / counts.sum(dim=1, keepdim=True).clamp_min(1)).numpy()
    n = len(classes)
    side = min(11.0, 2.5 + 0.45 * n)
    margin = 0.3 + 0.055 * max((min(len(str(c)), 18) for c in classes), default=1)  # room for the tick labels
    fig = new_figure(side + 1.2 + margin, side + margin, left=margin + 0.3, right=1.3, bottom=margin + 0.3, top=0.2)
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    names = [label(c)[:18] for c in classes]
    ax.set_xticks(range(n), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 25:
        for row in range(n):
            for col in range(n):
                ax.text(
                    col,
                    row,
                    str(int(counts[row, col])),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if rates[row, col] > 0.5 else "black",
                )
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of the true class")
    return to_png(fig)


def reliability_plot(
    edges: Sequence[float], accuracy: Sequence[float], confidence: Sequence[float], counts: Sequence[int], ece: float
) -> bytes:
    """Reliability diagram (Guo et al. 2017): accuracy per confidence bin against the diagonal of perfect
    calibration."""
    fig = new_figure(4.6, 4.2, bottom=0.55)
    ax = fig.add_subplot()
    lefts = np.asarray(edges[:-1])
    width = float(edges[1] - edges[0])
    filled = np.asarray(counts) > 0
    ax.bar(
        lefts[filled],
        np.asarray(accuracy)[filled],
        width,
        align="edge",
        edgecolor="black",
        color="#1f77b4",
        label="accuracy",
    )
    ax.bar(
        lefts[filled],
        (np.asarray(confidence) - np.asarray(accuracy))[filled],
        width,
        bottom=np.asarray(accuracy)[filled],
        align="edge",
        color="#d62728",
        edgecolor="#d62728",
        alpha=0.35,
        hatch="//",
        label="gap to mean confidence",
    )
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (max probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability  (ECE {ece * 100:.2f}%)")
    ax.legend(fontsize=7, loc="upper left")
    return to_png(fig)


def to_display(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """uint8 (N, C, H, W) or float in [0, 1] -> float (N, H, W, C) in [0, 1] for imshow."""
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    array = array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32)
    return np.clip(array.transpose(0, 2, 3, 1), 0.0, 1.0)


def mosaic(
    tiles: np.ndarray, columns: int, pad: int = 1, gap: int = 0, background: float = 1.0
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Tiles (N, H, W, C) in [0, 1] -> one image with `pad` pixels between tiles (plus `gap` above each row)
    and each tile's top-left corner.

    One imshow of a mosaic is ~10x faster than an axes per tile, which keeps the end-of-run report cheap."""
    count, height, width, channels = tiles.shape
    columns = max(1, min(columns, count))
    rows = max(1, math.ceil(count / columns))
    row_step, col_step = height + pad + gap, width + pad
    canvas = np.full((rows * row_step + pad, columns * col_step + pad, channels), background, dtype=np.float32)
    corners = []
    for index in range(count):
        row, col = divmod(index, columns)
        top, left = pad + gap + row * row_step, pad + col * col_step
        canvas[top : top + height, left : left + width] = tiles[index]
        corners.append((top, left))
    return canvas, corners


def image_grid(
    tiles: np.ndarray,
    columns: int = 8,
    titles: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    tile_inches: float = 0.9,
    title: str = "",
) -> bytes:
    """A grid of images (N, H, W, C) in [0, 1], with an optional caption above each tile (may hold newlines)
    or a label per row."""
    count, height, width, _ = tiles.shape
    pixels_per_inch = width / tile_inches
    lines = max((t.count("\n") + 1 for t in titles), default=0) if titles else 0
    caption_size = 7 if tile_inches >= 1.2 else 6
    gap = math.ceil(lines * caption_size / 50 * pixels_per_inch) if lines else 0  # room for the captions above each row
    pad = max(1, height // 14)
    picture, corners = mosaic(tiles, columns, pad=pad, gap=gap)
    extra_w = 0.25 + 0.07 * max(min(len(t), 24) for t in row_labels) if row_labels else 0.0
    top = 0.35 if title else 0.05
    fig = new_figure(
        picture.shape[1] / pixels_per_inch + extra_w + 0.1,
        picture.shape[0] / pixels_per_inch + top + 0.05,
        left=extra_w + 0.05,
        right=0.05,
        bottom=0.05,
        top=top,
    )
    ax = fig.add_subplot()
    gray = picture.shape[2] == 1
    ax.imshow(
        picture[..., 0] if gray else picture, cmap="gray" if gray else None, vmin=0, vmax=1, interpolation="nearest"
    )
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if titles:
        for (top, left), text in zip(corners, titles):
            ax.text(left, top - 0.5, label(text), fontsize=caption_size, va="bottom", ha="left", linespacing=1.1)
    if row_labels:
        ax.set_yticks(
            [corners[r * max(1, min(columns, count))][0] + height / 2 for r in range(len(row_labels))],
            [label(t)[:24] for t in row_labels],
            fontsize=7,
        )
        ax.tick_params(length=0)
    if title:
        ax.set_title(label(title), fontsize=9)
    return to_png(fig)


def heatmap_rows(
    images: np.ndarray,
    maps: Sequence[np.ndarray],
    captions: Sequence[str],
    map_name: str,
    cmap: str = "inferno",
    signed: bool = False,
) -> bytes:
    """Per example: the image, and the map over it with its colour scale (occlusion drops, saliency magnitudes)."""
    count = len(images)
    row_h = 2.1
    fig = new_figure(5.6, row_h * count + 0.1, left=0.1, right=0.5, bottom=0.1, top=0.3)
    fig.subplots_adjust(wspace=0.1, hspace=0.3)
    for row in range(count):
        image = images[row]
        gray = image.shape[2] == 1
        shown = image[..., 0] if gray else image
        heat = maps[row]
        limit = float(np.abs(heat).max()) or 1.0
        vmin, vmax = (-limit, limit) if signed else (0.0, limit)
        colormap = "RdBu_r" if signed else cmap
        left = fig.add_subplot(count, 2, 2 * row + 1)
        right = fig.add_subplot(count, 2, 2 * row + 2)
        left.imshow(shown, cmap="gray" if gray else None, vmin=0, vmax=1)
        left.set_title(label(captions[row]), fontsize=7)
        right.imshow(shown, cmap="gray" if gray else None, vmin=0, vmax=1)
        drawn = right.imshow(heat, cmap=colormap, vmin=vmin, vmax=vmax, alpha=0.6)
        right.set_title(map_name, fontsize=7)
        fig.colorbar(drawn, ax=right, fraction=0.046, pad=0.03).ax.tick_params(labelsize=6)
        for ax in (left, right):
            ax.set_xticks([])
            ax.set_yticks([])
    return to_png(fig)


def scatter_plot(
    xs: Sequence[float], ys: Sequence[float], title: str, xlabel: str, ylabel: str, log_x: bool = False
) -> bytes:
    fig = new_figure(4.2, 3.2)
    ax = fig.add_subplot()
    ax.scatter(list(xs), list(ys), s=14, color=PALETTE[0])
    if log_x and all(x > 0 for x in xs):
        ax.set_xscale("log")
    ax.set_title(label(title), fontsize=9)
    ax.set_xlabel(label(xlabel))
    ax.set_ylabel(label(ylabel))
    ax.grid(alpha=0.3)
    return to_png(fig)


def histograms_over_time(
    layers: dict[str, tuple[Sequence[float], np.ndarray]], limit: float, floor: float = 1e-5
) -> bytes:
    """fastai's "colorful dimension": per layer, x = iteration, y = output value, colour = log10 of the
    fraction of outputs in the bin. Each layer's (steps, fractions[sample, bin]) has bins even in
    asinh(value) over +-`limit`; the y range is cropped to the bins ever used."""
    count = len(layers)
    fig = new_figure(6.4, 1.5 * count + 0.8, left=0.8, right=1.1, bottom=0.5, top=0.3)
    fig.subplots_adjust(hspace=0.45)
    mesh = None
    for index, (name, (steps, fractions)) in enumerate(layers.items()):
        ax = fig.add_subplot(count, 1, index + 1)
        bins = fractions.shape[1]
        edges = np.linspace(-math.asinh(limit), math.asinh(limit), bins + 1)
        used = np.flatnonzero(fractions.max(axis=0) > 0)
        low, high = (max(used[0] - 1, 0), min(used[-1] + 2, bins)) if len(used) else (0, bins)
        xs = np.asarray(steps, dtype=float)
        gaps = np.diff(xs) if len(xs) > 1 else np.array([1.0])
        x_edges = np.concatenate([[xs[0] - gaps[0] / 2], xs[:-1] + gaps / 2, [xs[-1] + gaps[-1] / 2]])
        shown = np.log10(np.maximum(fractions[:, low:high], floor)).T
        mesh = ax.pcolormesh(x_edges, edges[low : high + 1], shown, cmap="viridis", vmin=math.log10(floor), vmax=0)
        ticks = [v for v in (-10.0, -3.0, -1.0, 0.0, 1.0, 3.0, 10.0) if edges[low] <= math.asinh(v) <= edges[high]]
        ax.set_yticks([math.asinh(v) for v in ticks], [f"{v:g}" for v in ticks], fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_ylabel("value", fontsize=7)
        ax.set_title(label(f"layer {name}"), fontsize=8)
    if mesh is not None:
        fig.colorbar(mesh, ax=fig.axes, fraction=0.04, pad=0.02).set_label("log10 fraction", fontsize=7)
        fig.axes[count - 1].set_xlabel("iteration")
    return to_png(fig)
