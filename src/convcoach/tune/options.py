"""The options of `convcoach tune` beyond the training config: one dataclass = `tune:` YAML keys = CLI flags."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from ..config import TrainConfig, config_fields, from_dict, load_yaml, unwrap_optional
from ..errors import ConfigError


@dataclass
class TuneOptions:
    """How to search; the search space itself comes from `space` (CLI text), `space_file` or YAML `space:`."""

    space: str | None = None  # "lr=1e-6..1e-2:log, dropout=0..0.5, optimizer=[sgd,adam]"
    space_file: str | None = None  # a YAML file holding a `space:` mapping
    sampler: str = "random"  # random | grid | tpe
    trials: int = 20  # trials per stage, when --stage-trials is not given
    grid_points: int = 3  # values per range for the grid sampler (log-spaced for log ranges)
    stages: int = 1
    stage_epochs: list[str] | None = None  # e.g. 2,6: epochs of each stage's trials
    stage_trials: list[str] | None = None  # e.g. 20,5: trials of each stage
    top_fraction: float = 0.2  # coarse-to-fine: the next stage's ranges span the best 20% of trials...
    margin: float = 0.25  # ...widened by 25% of their width on each side (log space for log ranges)
    prune: str = "none"  # none | median[:STARTUP_TRIALS[:WARMUP_EPOCHS]]
    jobs: int = 1  # trials at once in this process (threads)
    storage: str | None = None  # sqlite:///path.db or postgresql://...; default sqlite in the tune dir
    study: str | None = None  # the study name processes share; default 'convcoach-tune'

    def validate(self) -> TuneOptions:
        for key in ("trials", "stages", "jobs"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.grid_points < 2:
            raise ConfigError(f"grid_points must be >= 2, got {self.grid_points}")
        if not 0 < self.top_fraction <= 1:
            raise ConfigError(f"top_fraction must be in (0, 1], got {self.top_fraction}")
        if self.margin < 0:
            raise ConfigError(f"margin must be >= 0, got {self.margin}")
        self.epochs_per_stage()
        self.trials_per_stage()
        return self

    def epochs_per_stage(self) -> list[int] | None:
        return _ints("stage_epochs", self.stage_epochs)

    def trials_per_stage(self) -> list[int] | None:
        return _ints("stage_trials", self.stage_trials)


def _ints(key: str, values: list[str] | None) -> list[int] | None:
    if not values:
        return None
    try:
        return [int(v) for v in values]
    except ValueError:
        raise ConfigError(f"{key}: expected comma-separated integers, got {','.join(values)}") from None


FLAG_HELP = {
    "space": (
        'e.g. "lr=1e-6..1e-2:log, weight_decay=1e-6..1e-1:log, dropout=0..0.5, optimizer=[sgd,adam], width=[16,32,64]"'
    ),
    "sampler": "random (default) | grid | tpe",
    "stage_epochs": "epochs per trial in each stage, e.g. 2,6",
    "stage_trials": "trials in each stage, e.g. 20,5",
    "prune": "none | median[:STARTUP_TRIALS[:WARMUP_EPOCHS]] (median pruning on the validation curve)",
    "storage": "sqlite:///path.db or a PostgreSQL URL shared by several processes/machines",
    "study": "study name; the same name on the same storage resumes or joins it",
}


def search_only() -> tuple[str, ...]:
    """Training options whose flag the search's own takes (--sampler: Optuna's, not the loader's); a tune run
    sets them as top-level keys of its --config YAML."""
    return tuple(sorted(set(config_fields(TuneOptions)) & set(config_fields(TrainConfig))))


def add_tune_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TuneOptions field; flags override the YAML `tune:` mapping."""
    group = parser.add_argument_group("search")
    for name, annotation in config_fields(TuneOptions).items():
        flag = "--" + name.replace("_", "-")
        if unwrap_optional(annotation) is bool:
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=FLAG_HELP.get(name)
            )
        else:
            group.add_argument(flag, default=argparse.SUPPRESS, metavar=name.upper(), help=FLAG_HELP.get(name))


def split_yaml(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any]]:
    """The --config YAML split into (training keys, `space:` mapping, `tune:` mapping)."""
    values = load_yaml(args.config) if getattr(args, "config", None) else {}
    space = values.pop("space", None)
    tune = values.pop("tune", None) or {}
    if not isinstance(tune, dict):
        raise ConfigError(f"{args.config}: 'tune' must be a mapping of search options")
    return values, space, tune


def options_from_args(args: argparse.Namespace, yaml_tune: dict[str, Any]) -> TuneOptions:
    fields = config_fields(TuneOptions)
    values = {**yaml_tune, **{k: v for k, v in vars(args).items() if k in fields}}
    return from_dict(values, TuneOptions, source=f"{args.config} (tune:)" if args.config else "command line").validate()


def tune_inputs(args: argparse.Namespace) -> tuple[Any, Any, TuneOptions]:
    """(base TrainConfig, search space, TuneOptions) from `convcoach tune` flags and its --config YAML."""
    from .space import parse_space, space_from_mapping

    train_values, yaml_space, yaml_tune = split_yaml(args)
    fields = set(config_fields(TrainConfig)) - set(search_only())
    train_values.update({k: v for k, v in vars(args).items() if k in fields})
    base = from_dict(train_values, source=args.config or "command line")
    options = options_from_args(args, yaml_tune)
    given = [
        name
        for name, value in (
            ("--space", options.space),
            ("--space-file", options.space_file),
            ("space: in --config", yaml_space),
        )
        if value
    ]
    if len(given) > 1:
        raise ConfigError(f"give the search space once: {' and '.join(given)} are both set")
    if options.space:
        space = parse_space(options.space)
    elif options.space_file:
        values = load_yaml(options.space_file)
        space = space_from_mapping(values.get("space", values), source=options.space_file)
    elif yaml_space is not None:
        space = space_from_mapping(yaml_space, source=f"{args.config} (space:)")
    else:
        raise ConfigError(
            'tune needs a search space: --space "lr=1e-4..1e-1:log, dropout=0..0.5", '
            "--space-file FILE or a space: mapping in --config"
        )
    return base, space, options
