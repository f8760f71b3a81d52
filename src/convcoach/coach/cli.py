"""The coach's subcommands: `check`, `stats` and `diagnose` (registered here with @command)."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path
from typing import TYPE_CHECKING

from ..argtypes import at_least
from ..commands import add_config_flags, command, config_from_args
from ..config import TrainConfig, load_yaml
from ..files import dumps_json
from ..run_dirs import make_output_dir, output_dir

if TYPE_CHECKING:
    from .check_report import CheckReport
    from .probe import InitStats


def add_check_flags(parser: argparse.ArgumentParser) -> None:
    from .checks import ORDER

    add_config_flags(parser)
    parser.add_argument(
        "--only", metavar="NAMES", help=f"comma-separated checks to run (default all): {', '.join(ORDER)}"
    )
    parser.add_argument("--quick", action="store_true", help="coarser LR sweep (one point per decade) and shorter runs")


@command(
    "check",
    "sanity checks before training: initial loss, regularization, overfit 20 examples, LR sweep, "
    "gradients, activations, data",
    add_check_flags,
    order=130,
)
def run_check(args: argparse.Namespace) -> int:
    """Print the table, write check.json (and summary.json); exit 1 when a check fails."""
    from ..files import write_json
    from .checks import run_checks
    from .context import CheckBudget

    config = config_from_args(args).validate()
    only = [name.strip() for name in args.only.split(",") if name.strip()] if getattr(args, "only", None) else None
    budget = CheckBudget.quick() if args.quick else CheckBudget()
    budget.threads = config.threads or 1  # small batches: one thread unless --threads says otherwise
    out = output_dir(config.out, "check-")  # before the checks run
    report = run_checks(config, only=only, budget=budget)
    out = make_output_dir(out, config.out)
    report.write(out / "check.json")
    write_json(out / "summary.json", report.to_dict())
    report.render()
    picture = draw_lr_finder(report, out)
    print(f"check.json written to {out}" + (f"; the LR range test drawn in {picture}" if picture else ""))
    return 1 if report.status == "fail" else 0


def draw_lr_finder(report: CheckReport, out: Path) -> Path | None:
    """lr_finder.png from the lr_sweep result, when the report has one."""
    try:
        details = report.get("lr_sweep").details
    except KeyError:
        return None
    if not details.get("runs"):
        return None
    from ..render.lr_plot import lr_finder_plot
    from ..train.checkpoint import atomic_write_bytes

    low, high = details["recommended"] or (None, None)
    png = lr_finder_plot(details["runs"], low, high, details["best_lr"], details.get("configured_lr"))
    atomic_write_bytes(out / "lr_finder.png", lambda handle: handle.write(png))
    return out / "lr_finder.png"


def add_lr_find_flags(parser: argparse.ArgumentParser) -> None:
    add_config_flags(parser)


@command(
    "lr-find",
    "the LR range test alone (the one --lr auto runs): loss against LR, drawn in lr_finder.png",
    add_lr_find_flags,
    order=131,
)
def run_lr_find(args: argparse.Namespace) -> int:
    """Run only the lr_sweep check; print its verdict and the recommended range; draw lr_finder.png."""
    args.only, args.quick = "lr_sweep", False
    return run_check(args)


def add_stats_flags(parser: argparse.ArgumentParser) -> None:
    add_config_flags(parser)
    parser.add_argument(
        "--batch", type=at_least(1), default=16, help="inputs per forward pass (default 16, as in the lectures)"
    )
    parser.add_argument(
        "--input", choices=["noise", "data"], default="noise", help="N(0,1) noise (default) or a normalized data batch"
    )
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON instead of a table")


def stats_config(args: argparse.Namespace, config: TrainConfig) -> TrainConfig:
    """Without --norm, the architecture's own default (mlp: none, the lectures' plain net), not train's batch norm."""
    given = set(vars(args)) | (set(load_yaml(args.config)) if getattr(args, "config", None) else set())
    if "norm" not in given:
        from ..models import MODELS
        from ..models.resnet import ResNet

        builder = ResNet.__init__ if config.model == "resnet" else MODELS.get(config.model)
        default = inspect.signature(builder).parameters.get("norm_spec")
        if default is not None and isinstance(default.default, str):
            config.norm = default.default
    return config


@command(
    "stats",
    "per-layer activation mean/std of a freshly initialized model on noise or data (the lectures' init experiment)",
    add_stats_flags,
    order=140,
)
def run_stats(args: argparse.Namespace) -> int:
    from ..files import write_json
    from .histograms import save_histograms
    from .probe import init_stats

    config = stats_config(args, config_from_args(args))
    if config.out:
        output_dir(config.out)  # checked before the statistics are computed
    result = init_stats(config, args.batch, args.input, keep_values=bool(config.out))
    payload = result.to_dict()
    if config.out:
        out = Path(config.out)
        out.mkdir(parents=True, exist_ok=True)
        payload["histograms"] = [p.name for p in save_histograms(result.layers, out, f"{config.model} {result.init}: ")]
        write_json(out / "summary.json", payload)
    if args.json:
        print(dumps_json(payload, indent=2))
        return 0
    _print_stats_table(result, config)
    if config.out:
        print(f"histograms and summary.json written to {config.out}")
    return 0


def _print_stats_table(result: InitStats, config: TrainConfig) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{config.model} init {result.init}, {result.source} input {tuple(result.input_shape)}")
    for column in ("layer", "module", "kind", "mean", "std", "saturated", "dead"):
        table.add_column(column, justify="right" if column in ("layer", "mean", "std", "saturated", "dead") else "left")
    for s in result.layers:
        table.add_row(
            str(s.index),
            escape(s.name),
            s.kind,
            f"{s.mean:.2f}",
            f"{s.std:.2f}",
            "" if s.saturated is None else f"{s.saturated:.0%}",
            "" if s.dead is None else f"{s.dead:.0%}",
        )
    Console().print(table)
    for finding in result.findings:  # plain print: one unwrapped line each
        print(f"{finding.severity}: {finding.message}; try: {finding.fix}")
    if not result.findings:
        print("activations are well scaled in every layer")


def add_diagnose_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a training run directory (metrics.jsonl, summary.json)")
    parser.add_argument("--json", action="store_true", help="print the diagnosis as JSON")


@command(
    "diagnose",
    "diagnose a finished run from its curves and monitors: under/overfitting, learning rate, dead units, ...",
    add_diagnose_flags,
    order=150,
)
def run_diagnose(args: argparse.Namespace) -> int:
    from .diagnosis import diagnose_run, format_diagnosis

    diagnosis = diagnose_run(args.run_dir).to_dict()
    print(dumps_json(diagnosis, indent=2) if args.json else format_diagnosis(diagnosis))
    return 0


def print_train_diagnosis(summary: dict) -> None:
    """The verdict at the end of `convcoach train`."""
    from .diagnosis import format_diagnosis

    if summary.get("diagnosis"):
        print(format_diagnosis(summary["diagnosis"]))
