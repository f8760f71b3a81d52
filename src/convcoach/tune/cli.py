"""The tune package's subcommand: `tune` (registered here with @command)."""

from __future__ import annotations

import argparse

from ..commands import add_config_flags, command
from .options import add_tune_flags, search_only


def add_tune_arguments(parser: argparse.ArgumentParser) -> None:
    """Every train flag (the base config) but those the search's own flags take, then the search's flags."""
    add_config_flags(parser, skip=search_only())
    add_tune_flags(parser)


@command(
    "tune",
    "hyperparameter search: random, grid or TPE, coarse-to-fine stages, early abort (flags and/or --config)",
    add_tune_arguments,
    order=60,
)
def run_tune(args: argparse.Namespace) -> int:
    from .options import tune_inputs
    from .study import tune

    base, space, options = tune_inputs(args)
    result = tune(base, space, options)
    print(f"tune directory: {result.out} (trials.csv, best.yaml, plots/, tune.json)")
    return 0 if result.best is not None else 1
