"""`convcoach export`: an inference-only checkpoint (no optimizer or loop state), optionally with
each BatchNorm folded into the conv or linear layer before it; loads with `load_trained`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from .commands import command
from .infer import load_trained
from .models.fuse import count_batchnorms, fuse_bn
from .train.checkpoint import load_checkpoint, save_checkpoint

INFERENCE_KEYS = ("config", "model", "classes", "normalizer", "versions")


def export_checkpoint(checkpoint: str | Path, out: str | Path, fuse: bool = False, seed: int = 0) -> dict[str, Any]:
    """Write `out`; returns the folded BN count and the max abs output difference on a random batch."""
    payload = load_checkpoint(checkpoint)
    trained = load_trained(checkpoint)
    model = fuse_bn(trained.model) if fuse else trained.model
    exported = {key: payload[key] for key in INFERENCE_KEYS if key in payload}
    exported.update(model_state=model.state_dict(), fused_bn=fuse or bool(payload.get("fused_bn")))
    save_checkpoint(exported, out)
    x = torch.randn(64, *trained.in_shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        difference = (trained.model(x) - model(x)).abs().max().item()
    return {
        "out": str(out),
        "fused_bn": exported["fused_bn"],
        "batchnorms_folded": count_batchnorms(trained.model) - count_batchnorms(model),
        "batchnorms_left": count_batchnorms(model),
        "max_abs_difference": difference,
    }


def add_export_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="best.pt, last.pt or a run directory")
    parser.add_argument("--out", required=True, help="the exported file, e.g. model.pt")
    parser.add_argument(
        "--fuse-bn", action="store_true", help="fold each BatchNorm into the conv/linear layer before it"
    )


@command(
    "export",
    "write an inference checkpoint, with --fuse-bn folding each BatchNorm into the layer before it",
    add_export_flags,
    order=30,
)
def run_export(args: argparse.Namespace) -> int:
    info = export_checkpoint(args.checkpoint, args.out, args.fuse_bn)
    folded = (
        f"; {info['batchnorms_folded']} BatchNorm layers folded ({info['batchnorms_left']} left), "
        f"max abs output difference {info['max_abs_difference']:.2e}"
        if args.fuse_bn
        else ""
    )
    print(f"exported {info['out']}{folded}")
    return 0
