"""`convcoach export`: an inference-only checkpoint (no optimizer or loop state), or ONNX, TorchScript or
safetensors (export_formats.py), optionally with each BatchNorm folded into the conv or linear layer before it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from .commands import command
from .export_formats import FORMATS, export_model, format_for
from .infer import load_trained
from .models.fuse import count_batchnorms, fuse_bn
from .run_dirs import prepare_out_file
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
        "format": "checkpoint",
        "fused_bn": exported["fused_bn"],
        "batchnorms_folded": count_batchnorms(trained.model) - count_batchnorms(model),
        "batchnorms_left": count_batchnorms(model),
        "max_abs_difference": difference,
    }


def export(
    checkpoint: str | Path, out: str | Path, format: str | None = None, fuse: bool = False, seed: int = 0
) -> dict[str, Any]:
    """Export `checkpoint` to `out` as `format` (default from the suffix: .onnx, .ts/.torchscript, .safetensors,
    else a convcoach checkpoint); every format but the checkpoint is checked against torch on a batch first."""
    chosen = format_for(out, format)
    if chosen == "checkpoint":
        return export_checkpoint(checkpoint, out, fuse, seed)
    already_fused = bool(load_checkpoint(checkpoint).get("fused_bn"))
    trained = load_trained(checkpoint)
    before = count_batchnorms(trained.model)
    info = export_model(trained, out, chosen, fuse, already_fused, seed)
    left = count_batchnorms(fuse_bn(trained.model)) if fuse else before
    return {
        **info,
        "fused_bn": info["metadata"]["fused_bn"],
        "batchnorms_folded": before - left,
        "batchnorms_left": left,
    }


def add_export_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="best.pt, last.pt or a run directory")
    parser.add_argument(
        "--out", required=True, help="the exported file: model.pt, model.onnx, model.ts or model.safetensors"
    )
    parser.add_argument(
        "--format",
        help=f"checkpoint | {' | '.join(FORMATS.names())} (default: from the --out suffix; else checkpoint)",
    )
    parser.add_argument(
        "--fuse-bn", action="store_true", help="fold each BatchNorm into the conv/linear layer before it"
    )


@command(
    "export",
    "write an inference checkpoint, ONNX, TorchScript or safetensors (class names and preprocessing inside), "
    "with --fuse-bn folding each BatchNorm into the layer before it",
    add_export_flags,
    order=30,
)
def run_export(args: argparse.Namespace) -> int:
    prepare_out_file(args.out)  # before the checkpoint loads
    info = export(args.checkpoint, args.out, args.format, args.fuse_bn)
    folded = (
        f"; {info['batchnorms_folded']} BatchNorm layers folded ({info['batchnorms_left']} left)"
        if args.fuse_bn
        else ""
    )
    if info["format"] == "checkpoint":
        checked = f", max abs output difference {info['max_abs_difference']:.2e}" if args.fuse_bn else ""
    else:
        opset = f", opset {info['metadata']['opset']}" if "opset" in info["metadata"] else ""
        checked = f"; reloaded and checked on a batch: max abs difference from torch {info['max_abs_difference']:.2e}"
        folded = f" ({info['format']}{opset}){folded}"
    print(f"exported {info['out']}{folded}{checked}")
    return 0
