"""Histogram of each layer's activations at init, one PNG per layer (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

from .stats import LayerStats


def save_histograms(layers: list[LayerStats], out: str | Path, title: str = "") -> list[Path]:
    """Write out/hist_<NN>_<kind>.png for every layer that kept a sample of its outputs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for layer in layers:
        if layer.values is None:
            continue
        figure, axis = plt.subplots(figsize=(4, 3))
        axis.hist(layer.values.numpy(), bins=60, color="#3b6ea8")
        axis.set_title(
            f"{title}layer {layer.index} ({layer.kind})\nmean={layer.mean:.2f} std={layer.std:.2f}", fontsize=9
        )
        axis.set_xlabel("activation")
        figure.tight_layout()
        path = out / f"hist_{layer.index:02d}_{layer.kind.lower()}.png"
        figure.savefig(path, dpi=80)
        plt.close(figure)
        paths.append(path)
    return paths
