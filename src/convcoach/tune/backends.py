"""Optuna's pieces by name: the samplers (random, grid, TPE), the pruners (none, median) and the
shared study storage on a real database (SQLite or PostgreSQL), retried while it starts, whose trials beat a
heartbeat: a trial whose process died is failed and queued again with the same parameters."""

from __future__ import annotations

import os
import socket
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import optuna

from ..errors import ConfigError
from ..registry import Registry, parse_spec
from .options import TuneOptions
from .space import Space, grid_space

SAMPLERS: Registry[Callable[..., optuna.samplers.BaseSampler]] = Registry("sampler")


# each builder gets this process's seed and the study's (the same in every process and every resume)
@SAMPLERS.register("random")
def random_sampler(
    space: Space, options: TuneOptions, seed: int, trials: int, study_seed: int
) -> optuna.samplers.BaseSampler:
    """Independent draws, log-uniform on log ranges (Bergstra & Bengio 2012)."""
    return optuna.samplers.RandomSampler(seed=seed)


@SAMPLERS.register("grid")
def grid_sampler(
    space: Space, options: TuneOptions, seed: int, trials: int, study_seed: int
) -> optuna.samplers.BaseSampler:
    """Every combination of the choices and `grid_points` values per range; the study stops when exhausted.
    A trial keeps the index of its point in the shuffled grid: every process and resume must shuffle it alike."""
    return optuna.samplers.GridSampler(grid_space(space, options.grid_points), seed=study_seed)


@SAMPLERS.register("tpe")
def tpe_sampler(
    space: Space, options: TuneOptions, seed: int, trials: int, study_seed: int
) -> optuna.samplers.BaseSampler:
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


# ----- storage and dead processes -----
HEARTBEAT_SECONDS = 2  # a running trial's heartbeat thread updates one row this often (~1 ms on SQLite)
GRACE_SECONDS = 6  # three missed heartbeats: the trial's process is gone
UNSTARTED_SECONDS = 60  # a trial still without a 'process' attribute this long after it started died before it began
MAX_RETRIES = 2  # a trial whose process keeps dying (killed for memory, say) is rerun at most this often
WAITING, RUNNING, FAIL = optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.FAIL


def open_storage(
    url: str, attempts: int = 4, heartbeat: int = HEARTBEAT_SECONDS, grace: int = GRACE_SECONDS
) -> optuna.storages.RDBStorage:
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
                    with_driver(url),
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat,
                    grace_period=grace,
                    heartbeat_stale_trial_callback=retry_trial,
                )
        except ImportError as exc:
            raise ConfigError(
                f"storage '{url}': its database driver is missing ({exc.__cause__ or exc}); "
                "for PostgreSQL: pip install 'convcoach[postgres]'"
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


def with_driver(url: str) -> str:
    """`url` naming the PostgreSQL driver the [postgres] extra installs (psycopg 3): a bare postgresql:// means
    psycopg2 to SQLAlchemy before 2.1 and psycopg after. An explicit postgresql+DRIVER:// is kept."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else url


def _host() -> str:
    """This machine, and its PID namespace: two containers may share a hostname but never process ids."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")  # 'pid:[4026531836]'
    except OSError:
        namespace = ""
    return f"{socket.gethostname()} {namespace}".strip()


HOST = _host()


def this_process() -> dict[str, Any]:
    """Who runs a trial, kept as its 'process' attribute: a rerun on the same host knows at once if it died."""
    return {"host": HOST, "pid": os.getpid()}


def process_is_gone(process: Any) -> bool:
    """True when `process` (a trial's 'process' attribute) ran on this host and no process has its id any more."""
    if not isinstance(process, dict) or process.get("host") != HOST:
        return False
    try:
        os.kill(int(process["pid"]), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user
        return False
    return False


def fail_dead_trials(study: optuna.Study) -> None:
    """Fail the running trials whose process is gone and queue each again with the same parameters: at once when
    it ran on this host, after GRACE_SECONDS without a heartbeat otherwise (Optuna's check, which calls
    retry_trial), and UNSTARTED_SECONDS after its start when it was killed before its objective began."""
    now = datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(RUNNING,)):
        process = trial.user_attrs.get("process")
        unstarted = process is None and now - trial.datetime_start > timedelta(seconds=UNSTARTED_SECONDS)
        if unstarted or process_is_gone(process):
            try:  # the storage call Optuna's own check makes; study.tell would also run the sampler's after_trial
                failed = study._storage.set_trial_state_values(trial._trial_id, state=FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:  # another process failed it first
                continue
            if failed:
                retry_trial(study, trial)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def retry_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Queue a dead trial's parameters as a waiting trial, the next one any process runs. Optuna's
    RetryHeartbeatStaleTrialCallback would copy the dead trial's user attributes, whose 'process' marks it dead."""
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) > MAX_RETRIES:
        return
    study.add_trial(
        optuna.create_trial(
            state=WAITING,
            params=trial.params,
            distributions=trial.distributions,
            system_attrs={**trial.system_attrs, "failed_trial": history[0], "retry_history": history},
        )
    )


def retried_trials(study: optuna.Study) -> int:
    """How many trials were queued again after their process died."""
    return sum("retry_history" in t.system_attrs for t in study.get_trials(deepcopy=False))
