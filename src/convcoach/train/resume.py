"""`--resume`: the saved options and last.pt of the run it continues, and which options may change."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..config import TrainConfig, config_fields, from_dict, load_yaml
from ..errors import ConfigError
from .checkpoint import load_checkpoint
from .setup import base_lr

log = logging.getLogger("convcoach")

# what `--resume` may set differently from the run's saved options; anything else is an error
RESUME_MAY_CHANGE = ("epochs", "quiet", "nproc", "device", "report")


def resumed_run(config: TrainConfig) -> tuple[TrainConfig, bool, dict[str, Any] | None]:
    """`resumed_config`, and last.pt's payload: None for a run stopped before its first checkpoint, which
    starts over from its config.yaml (the same run: every draw comes from the saved seed)."""
    run_dir = Path(config.resume or ".")
    last = run_dir / "last.pt"
    if not last.is_file() and not (run_dir / "config.yaml").is_file():
        raise ConfigError(
            f"cannot resume {run_dir}: it has neither last.pt nor config.yaml (not a run directory, or a run "
            "stopped before it saved its options: start it again)"
        )
    config, new_length = resumed_config(config)
    if not last.is_file():
        log.warning("%s has no last.pt (stopped before its first checkpoint): starting the run over", run_dir)
        return config, new_length, None
    return config, new_length, load_checkpoint(last, resume=True)


def resumed_config(config: TrainConfig) -> tuple[TrainConfig, bool]:
    """The saved options of the run `config.resume` continues, with those in RESUME_MAY_CHANGE that
    `config` sets; and whether `epochs` (the total, as Lightning's max_epochs) changed. An option set
    to something else than the saved value is a ConfigError: ignoring it would be a silent surprise."""
    run_dir = Path(config.resume or ".")
    source = run_dir / "config.yaml"
    saved = from_dict(load_yaml(source), source=str(source))
    defaults = TrainConfig()
    fixed = [
        name
        for name in config_fields(TrainConfig)
        if name not in ("resume", "out", *RESUME_MAY_CHANGE)
        and getattr(config, name) != getattr(defaults, name)
        and _used(config, name) != _used(saved, name)
    ]
    if config.out and Path(config.out).resolve() != run_dir.resolve():
        fixed.append("out")
    if fixed:
        differences = ", ".join(f"{name} {getattr(config, name)!r} (saved: {_saved(saved, name)})" for name in fixed)
        raise ConfigError(
            f"--resume {run_dir} continues the options saved in {source}; these differ and cannot change mid-run: "
            f"{differences}. A resume may change only {', '.join(RESUME_MAY_CHANGE)}; "
            "start a new run to change the others"
        )
    new_length = config.epochs != defaults.epochs and config.epochs != saved.epochs
    if new_length and saved.time_budget:
        raise ConfigError(
            f"{run_dir} was trained with time_budget {saved.time_budget:g} min, which plans its epochs: "
            "its epoch count cannot change on resume"
        )
    for name in RESUME_MAY_CHANGE:
        if getattr(config, name) != getattr(defaults, name):
            setattr(saved, name, getattr(config, name))
    saved.quiet, saved.resume, saved.out = config.quiet, str(run_dir), str(run_dir)
    return saved, new_length


def _used(config: TrainConfig, name: str) -> Any:
    """The value a run uses for option `name`: an unset lr is the optimizer's default."""
    value = getattr(config, name)
    return base_lr(config) if name == "lr" and value is None else value


def _saved(saved: TrainConfig, name: str) -> str:
    if name == "lr" and saved.lr is None:
        return f"unset, so {saved.optimizer}'s default {_used(saved, name)!r}"
    return repr(getattr(saved, name))
