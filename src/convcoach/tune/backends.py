"""Optuna's pieces by name: the samplers (random, grid, TPE), the pruners (none, median) and the
shared study storage on a real database (SQLite or PostgreSQL), retried while it starts."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import optuna

from ..errors import ConfigError
from ..registry import Registry, parse_spec
from .options import TuneOptions
from .space import Space, grid_space

SAMPLERS: Registry[Callable[..., optuna.samplers.BaseSampler]] = Registry("sampler")


@SAMPLERS.register("random")
def random_sampler(space: Space, options: TuneOptions, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    """Independent draws, log-uniform on log ranges (Bergstra & Bengio 2012)."""
    return optuna.samplers.RandomSampler(seed=seed)


@SAMPLERS.register("grid")
def grid_sampler(space: Space, options: TuneOptions, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    """Every combination of the choices and `grid_points` values per range; the study stops when exhausted."""
    return optuna.samplers.GridSampler(grid_space(space, options.grid_points), seed=seed)


@SAMPLERS.register("tpe")
def tpe_sampler(space: Space, options: TuneOptions, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    """Bayesian optimization with a tree-structured Parzen estimator (Bergstra et al. 2011);
    its first min(10, trials/2) trials are random."""
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, min(10, trials // 2)))


PRUNERS: Registry[Callable[[str, list[str]], optuna.pruners.BasePruner]] = Registry("pruner")


@PRUNERS.register("none")
def no_pruner(spec: str, args: list[str]) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


@PRUNERS.register("median")
def median_pruner(spec: str, args: list[str]) -> optuna.pruners.BasePruner:
    """median[:STARTUP[:WARMUP]]: stop a trial whose best val accuracy so far is below the median of earlier
    trials at the same epoch, once STARTUP (5) trials completed and after WARMUP (0) epochs."""
    try:
        startup = int(args[0]) if args else 5
        warmup = int(args[1]) if len(args) > 1 else 0
    except ValueError:
        raise ConfigError(f"prune '{spec}': expected median[:STARTUP_TRIALS[:WARMUP_EPOCHS]] with integers") from None
    if startup < 0 or warmup < 0 or len(args) > 2:
        raise ConfigError(f"prune '{spec}': expected median[:STARTUP_TRIALS[:WARMUP_EPOCHS]], both >= 0")
    return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup + 1)  # steps are 1-based epochs


def create_pruner(spec: str) -> optuna.pruners.BasePruner:
    name, args = parse_spec(spec)
    pruner = PRUNERS.get(name)(spec, args)
    args.check_all_read(spec, "prune")
    return pruner


# ----- storage and data -----
def open_storage(url: str, attempts: int = 4) -> optuna.storages.RDBStorage:
    """An RDB storage (SQLite file or PostgreSQL URL) with heartbeats, so a killed process's trials get failed
    and rerun."""
    if "://" not in url:
        raise ConfigError(
            f"storage '{url}' is not a database URL; use sqlite:///path.db or postgresql://user:pass@host/db"
        )
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=20, grace_period=60
                )
        except ImportError as exc:
            raise ConfigError(
                f"storage '{url}': a driver is missing ({exc}); for PostgreSQL: pip install psycopg2-binary"
            ) from None
        except (
            Exception
        ) as exc:  # SQLAlchemy's errors: a bad URL, an unreachable server, or two processes creating the tables at once
            if attempt == attempts - 1:
                raise ConfigError(
                    f"storage '{url}': cannot open it ({type(exc).__name__}: {str(exc).splitlines()[0]})"
                ) from None
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")
