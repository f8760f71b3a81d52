"""The LR finder's picture, as fastai and Lightning users know it: the held-out loss after each short
run against its learning rate on a log axis, the recommended range shaded and the chosen LR marked."""

from __future__ import annotations

import math
from typing import Any

from .figures import new_figure, to_png


def lr_finder_plot(
    runs: list[dict[str, Any]],
    low: float | None,
    high: float | None,
    chosen: float | None,
    configured: float | None = None,
) -> bytes:
    """PNG: probe loss after each LR's short run (blown-up runs drawn at the top edge, as crosses)."""
    fig = new_figure(6.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    finite = [r for r in runs if r["steps"] and math.isfinite(r["after"]) and r["verdict"] != "too high"]
    before = runs[0]["before"] if runs else 1.0
    top = max([before * 1.5] + [r["after"] for r in finite])
    ax.plot([r["lr"] for r in finite], [r["after"] for r in finite], "o-", color="tab:blue", label="loss after the run")
    blown = [r["lr"] for r in runs if r["verdict"] == "too high"]
    if blown:
        ax.plot(blown, [top] * len(blown), "x", color="tab:red", label="blew up")
    ax.axhline(before, color="grey", linestyle=":", label="loss at init")
    if low is not None and high is not None:
        ax.axvspan(low / 10**0.125, high * 10**0.125, color="tab:green", alpha=0.15, label="recommended")
    if chosen is not None:
        ax.axvline(chosen, color="tab:green", label=f"chosen {chosen:.2g}")
    if configured is not None:
        ax.axvline(configured, color="tab:orange", linestyle="--", label=f"configured {configured:.2g}")
    ax.set_xscale("log")
    ax.set_ylim(0, top * 1.05)
    ax.set_xlabel("learning rate (peak)")
    ax.set_ylabel("held-out loss")
    ax.set_title("LR range test: the same short runs --lr auto makes")
    ax.legend(fontsize=7, loc="lower left")
    return to_png(fig)
