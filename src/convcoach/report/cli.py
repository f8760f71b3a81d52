"""The report package's subcommands: `inspect`, `report` and `compare` (registered here with @command)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..argtypes import at_least
from ..commands import command
from ..errors import ConfigError
from ..run_dirs import prepare_out_dir, prepare_out_file


def add_inspect_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="best.pt, last.pt or a run directory")
    parser.add_argument("--data", help="look at another dataset with the same classes")
    parser.add_argument("--data-dir")
    parser.add_argument("--split", default="test", choices=["test", "val", "train"])
    parser.add_argument(
        "--image",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="image files for occlusion and saliency (default: dataset examples)",
    )
    parser.add_argument(
        "--examples",
        type=at_least(1),
        default=4,
        help="dataset images for occlusion and saliency when no --image (default 4)",
    )
    parser.add_argument(
        "--layer", help="layer for the maximally activating images (default: the activation after the last conv)"
    )
    parser.add_argument("--units", help="comma-separated unit (channel) numbers of --layer (default: the first 8)")
    parser.add_argument("--top", type=at_least(1), default=8, help="images per unit (default 8)")
    parser.add_argument(
        "--patch", type=at_least(1), help="occlusion patch size in pixels (default: a quarter of the image side)"
    )
    parser.add_argument("--stride", type=at_least(1), help="occlusion stride in pixels (default: half the patch)")
    parser.add_argument(
        "--samples",
        type=at_least(1),
        default=1000,
        help="dataset images scanned for max activation and dead ReLUs (default 1000)",
    )
    parser.add_argument(
        "--noise", type=at_least(1), default=256, help="random-noise images fed to the net (default 256)"
    )
    parser.add_argument(
        "--steps", type=at_least(0), default=100, help="gradient-ascent steps of each class visualization (default 100)"
    )
    parser.add_argument("--seed", type=at_least(0), default=0)
    parser.add_argument("--out", help="output directory (default: RUN_DIR/inspect, which the run report includes)")


@command(
    "inspect",
    "look inside a trained net: filters, occlusion, top images per unit, noise, class visualization, "
    "saliency, dead ReLUs",
    add_inspect_flags,
    order=100,
)
def run_inspect(args: argparse.Namespace) -> int:
    from ..infer import load_trained
    from ..inspect.run import InspectOptions, inspect_model

    options = InspectOptions(
        data=args.data,
        data_dir=args.data_dir,
        split=args.split,
        images=list(args.image),
        examples=args.examples,
        layer=args.layer,
        units=_units(args.units),
        top=args.top,
        patch=args.patch,
        stride=args.stride,
        samples=args.samples,
        noise=args.noise,
        steps=args.steps,
        seed=args.seed,
    )
    checkpoint = Path(args.checkpoint)
    out = prepare_out_dir(args.out or (checkpoint if checkpoint.is_dir() else checkpoint.parent) / "inspect")
    trained = load_trained(args.checkpoint)
    findings = inspect_model(trained, options, out)
    for finding in findings:
        print(f"{finding.title}: {out / (finding.key + '.png')}")
    print(f"report: {out / 'inspect.html'}")
    return 0


def _units(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        units = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--units must be comma-separated integers, got '{text}'") from None
    if not units:
        raise ConfigError("--units is empty")
    return units


def add_report_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--out", help="output file (default RUN_DIR/report.html)")


@command("report", "rebuild RUN_DIR/report.html, the self-contained HTML report of a run", add_report_flags, order=110)
def run_report(args: argparse.Namespace) -> int:
    from .run_report import write_run_report

    if args.out:
        prepare_out_file(args.out)
    print(f"report: {write_run_report(args.run_dir, out=args.out)}")
    return 0


def add_compare_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--out", default="compare.html", help="output file (default compare.html)")


@command(
    "compare",
    "overlay the curves of several runs on one HTML page, with a table of their final figures",
    add_compare_flags,
    order=120,
)
def run_compare(args: argparse.Namespace) -> int:
    from .compare import compare_runs

    prepare_out_file(args.out)
    print(f"comparison: {compare_runs(args.run_dirs, args.out)}")
    return 0
