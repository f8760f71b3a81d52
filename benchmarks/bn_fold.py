"""BatchNorm folding: inference speed of a model with its BNs folded into the preceding conv/linear
layers vs the unfused model, and the largest output difference between them.

Run: python benchmarks/bn_fold.py [--checkpoint RUN_DIR] [--model resnet --depth 8 --width 32]
         [--batch 512] [--rounds 20] [--threads N]
Short check: python benchmarks/bn_fold.py --rounds 3

Without --checkpoint the default recipe's model (Fashion-MNIST shape) is built and its BN statistics
made non-trivial with a few training-mode passes, so the fold has something to fold. Rounds
alternate fused and unfused; each figure is the best of its rounds (the machine is shared)."""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn as nn

from convcoach.models import create_model
from convcoach.models.fuse import count_batchnorms, fuse_bn


def seconds_per_batch(model: nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        model(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint")
    parser.add_argument("--model", default="resnet")
    parser.add_argument("--depth", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.checkpoint:
        from convcoach.infer import load_trained

        trained = load_trained(args.checkpoint)
        model, shape = trained.model, trained.in_shape
    else:
        shape = (1, 28, 28)
        options = {k: v for k, v in {"depth": args.depth, "width": args.width}.items() if v}
        model = create_model(args.model, shape, 10, **options)
        with torch.no_grad():  # give the BNs running statistics, as training would
            model.train()
            for _ in range(3):
                model(torch.randn(64, *shape) * 1.5 + 0.3)
    model.eval()
    fused = fuse_bn(model)
    x = torch.randn(args.batch, *shape, generator=torch.Generator().manual_seed(0))
    models = {
        "unfused": model.to(memory_format=torch.channels_last),
        "fused": fused.to(memory_format=torch.channels_last),
    }
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        difference = (models["unfused"](x) - models["fused"](x)).abs().max().item()
    times: dict[str, list[float]] = {"unfused": [], "fused": []}
    for _ in range(2):  # warm-up
        for m in models.values():
            seconds_per_batch(m, x)
    for _ in range(args.rounds):
        for name, m in models.items():
            times[name].append(seconds_per_batch(m, x))
    best = {name: min(values) for name, values in times.items()}
    print(
        json.dumps(
            {
                "model": args.checkpoint or {"name": args.model, "depth": args.depth, "width": args.width},
                "batch": args.batch,
                "rounds": args.rounds,
                "threads": torch.get_num_threads(),
                "batchnorms_folded": count_batchnorms(model) - count_batchnorms(fused),
                "max_abs_difference": difference,
                "unfused_images_per_s": round(args.batch / best["unfused"]),
                "fused_images_per_s": round(args.batch / best["fused"]),
                "speedup": round(best["unfused"] / best["fused"], 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
