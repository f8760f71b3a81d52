"""Run the search on Optuna: one study per stage, each trial a Trainer run scored on validation accuracy."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch

from ..config import FIXED_EPOCHS, TrainConfig
from ..data import DataBundle
from ..errors import ConfigError
from ..files import write_json
from ..logs.study_runs import study_logging
from ..run_dirs import lock_run_dir, make_output_dir, output_dir
from .backends import SAMPLERS, create_pruner, fail_dead_trials, open_storage, retried_trials
from .narrowing import Stage, narrow, plan_stages, top_trials
from .options import TuneOptions
from .space import Space, check_space, grid_size, space_from_dict, space_to_dict
from .trials import (
    SurplusTrial,
    TrialObjective,
    counted_trials,
    load_trial_data,
    wait_for_other_processes,
    without_test,
)
from .tune_report import (
    TrialRecord,
    at_chance_line,
    best_record,
    edge_warnings,
    format_line,
    record_from_trial,
    scatter_plots,
    trials_table,
    write_best_yaml,
    write_csv,
)

log = logging.getLogger("convcoach")


@dataclass
class TuneResult:
    out: Path
    best: TrialRecord | None
    records: list[TrialRecord]
    warnings: list[str]
    summary: dict[str, Any] = field(default_factory=dict)


def sampler_seed(base_seed: int, stage: int, existing: int, shared: bool) -> int:
    """Reproducible for one process; a resumed study continues the sequence; processes sharing a study draw apart.
    With existing=0 and shared=False: the study's seed, the same in every process and every resume."""
    seed = base_seed * 1_000_003 + stage * 10_007 + existing
    if shared:
        seed = seed * 31 + os.getpid()
    return seed % 2**32


def tune(
    base: TrainConfig,
    space: Space,
    options: TuneOptions | None = None,
    data: DataBundle | None = None,
    echo: Callable[[str], None] | None = print,
) -> TuneResult:
    """Run the staged search and write the reports into `base.out` (default runs/tune-<timestamp>)."""
    options = (options or TuneOptions()).validate()
    echo = echo or (lambda line: None)
    if base.nproc > 1:
        raise ConfigError("tune runs each trial in one process: drop --nproc (use --jobs for parallel trials)")
    if base.epochs is None:  # trials of a fixed length: a time rule would make them depend on the machine
        base = dataclasses.replace(base, epochs=FIXED_EPOCHS)
    base = base.validate()
    stages = plan_stages(
        options.stages, options.epochs_per_stage(), options.trials_per_stage(), base.epochs, options.trials
    )
    check_space(space, base)
    SAMPLERS.get(options.sampler)
    create_pruner(options.prune)
    out = make_output_dir(output_dir(base.out, "tune-"), base.out)
    lock = lock_run_dir(out)  # one process per tune directory (processes sharing a study give each its own --out)
    try:
        with study_logging(base, out, options.study or "convcoach-tune") as logged:  # --log: trials nest under it
            return _search(logged, space, options, stages, out, data, echo)
    finally:
        lock.release()


def _search(
    base: TrainConfig,
    space: Space,
    options: TuneOptions,
    stages: list[Stage],
    out: Path,
    data: DataBundle | None,
    echo: Callable[[str], None],
) -> TuneResult:
    """The stages of `tune`, in the directory `out` it owns."""
    storage = open_storage(options.storage or f"sqlite:///{(out / 'study.db').resolve()}")
    data = without_test(data if data is not None else load_trial_data(base))
    if options.jobs > 1:  # trials are threads: split the cores rather than oversubscribe them
        torch.set_num_threads(max(1, torch.get_num_threads() // options.jobs))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = options.study or "convcoach-tune"
    records: list[TrialRecord] = []
    stage_reports = []
    current, previous = space, []
    for stage in stages:
        study_name = name if stage.number == 1 else f"{name}-stage{stage.number}"
        study = optuna.create_study(storage=storage, study_name=study_name, direction="maximize", load_if_exists=True)
        current = _stage_space(study, stage, space if stage.number == 1 else current, previous, options, echo)
        study.sampler = SAMPLERS.get(options.sampler)(
            current,
            options,
            sampler_seed(base.seed, stage.number, len(study.trials), options.storage is not None),
            stage.trials,
            study_seed=sampler_seed(base.seed, stage.number, 0, shared=False),
        )
        study.pruner = create_pruner(options.prune)
        header = (
            f"stage {stage.number}/{len(stages)}: {stage.trials} trials x {stage.epochs} epochs, "
            f"{options.sampler} sampler, study '{study_name}'"
        )
        if options.sampler == "grid":
            header += f" ({grid_size(current, options.grid_points)} grid points)"
        echo(header + "\n  " + ", ".join(p.describe() for p in current.values()))
        _run_stage(
            study,
            TrialObjective(base, current, stage, data, out),
            stage,
            options.jobs,
            current,
            echo if not base.quiet else None,
        )
        stage_records = _stage_records(study, stage)
        echo(
            f"stage {stage.number} trials by validation accuracy:\n"
            + trials_table(stage_records, current, stage.trials)
        )
        records += stage_records
        previous = stage_records
        stage_reports.append(
            {
                "stage": stage.number,
                "study": study_name,
                "epochs": stage.epochs,
                "trials": stage.trials,
                "space": [p.describe() for p in current.values()],
            }
        )
    return _finish(base, space, stages, records, previous, stage_reports, out, echo, _chance_figures(data))


def _stage_space(
    study: optuna.Study,
    stage: Stage,
    space: Space,
    previous: list[TrialRecord],
    options: TuneOptions,
    echo: Callable[[str], None],
) -> Space:
    """Stage 1 searches the given space; later stages narrow the previous stage's space (stored in the study, so
    every process and every resume uses the same ranges)."""
    stored = study.user_attrs.get("space")
    if stage.number > 1 and stored:
        return space_from_dict(stored)
    if stage.number > 1:
        results = [(r.val_acc, r.params) for r in previous if r.outcome == "completed" and r.val_acc is not None]
        if not results:
            echo(f"stage {stage.number}: no completed trial in stage {stage.number - 1}; keeping its ranges")
        space = narrow(space, top_trials(results, options.top_fraction), options.margin)
    study.set_user_attr("space", space_to_dict(space))
    return space


def _run_stage(
    study: optuna.Study,
    objective: TrialObjective,
    stage: Stage,
    jobs: int,
    space: Space,
    echo: Callable[[str], None] | None,
) -> None:
    """This process's share of the stage, then the wait for other processes' trials; a trial whose process died
    is queued again, and another pass runs it when its death was found after the trials left were counted."""
    while True:
        fail_dead_trials(study)
        retried = retried_trials(study)
        _run_trials(study, objective, stage, jobs, space, echo)
        wait_for_other_processes(study)
        if counted_trials(study) >= stage.trials or retried_trials(study) == retried:
            return


def _run_trials(
    study: optuna.Study,
    objective: TrialObjective,
    stage: Stage,
    jobs: int,
    space: Space,
    echo: Callable[[str], None] | None,
) -> None:
    remaining = stage.trials - counted_trials(study)
    if remaining <= 0:
        return

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        record = record_from_trial(trial, stage.number, stage.epochs)
        if echo is not None and record is not None:
            echo(format_line(record, space, stage.trials))
        if counted_trials(study) >= stage.trials:  # other processes took the rest of the budget
            study.stop()

    study.optimize(
        objective, n_trials=remaining, n_jobs=jobs, catch=(ConfigError, SurplusTrial), callbacks=[after_trial]
    )


def _stage_records(study: optuna.Study, stage: Stage) -> list[TrialRecord]:
    """The stage's trials as records; a trial whose process died names the trial that reran it."""
    trials = study.get_trials(deepcopy=False)
    rerun_as = {t.system_attrs["retry_history"][-1]: t.number for t in trials if "retry_history" in t.system_attrs}
    records = (record_from_trial(t, stage.number, stage.epochs, rerun_as.get(t.number)) for t in trials)
    return [r for r in records if r is not None]


def _finish(
    base: TrainConfig,
    space: Space,
    stages: list[Stage],
    records: list[TrialRecord],
    last: list[TrialRecord],
    stage_reports: list[dict[str, Any]],
    out: Path,
    echo: Callable[[str], None],
    chance: dict[str, Any] | None = None,
) -> TuneResult:
    """trials.csv, best.yaml, plots, edge warnings, the at-chance line and tune.json; the best comes from
    the last stage (the longest trials)."""
    write_csv(records, out / "trials.csv")
    best = best_record(last) or best_record(records)
    notes = edge_warnings(space, best.params) if best else []
    if best is not None:
        write_best_yaml(base, best, out / "best.yaml")
        echo(f"best: val_acc {best.val_acc:.4f} (stage {best.stage}, trial {best.number}) -> {out / 'best.yaml'}")
    else:
        echo("no trial completed: no best.yaml (see trials.csv for why)")
    for note in notes:
        echo(f"warning: {note}")
    nothing_learned = at_chance_line(records, **chance) if chance else None
    if nothing_learned:
        echo(nothing_learned)
    plots = scatter_plots(records, space, out / "plots") if records else []
    summary = {
        "command": "tune",
        "out": str(out),
        "stages": stage_reports,
        "best": None
        if best is None
        else {
            "stage": best.stage,
            "trial": best.number,
            "val_acc": best.val_acc,
            "params": best.params,
            "config_values": best.config_values,
        },
        "warnings": notes,
        "at_chance": nothing_learned,
        "outcomes": {o: sum(r.outcome == o for r in records) for o in sorted({r.outcome for r in records})},
        "compute": compute_saved(records),
        "plots": [str(p) for p in plots],
    }
    write_json(out / "tune.json", summary)
    return TuneResult(out, best, records, notes, summary)


def _chance_figures(data: DataBundle) -> dict[str, Any] | None:
    """What judging "at chance" needs: classes, validation size and the majority class's share of it."""
    if data.val is None or not len(data.val):
        return None
    counts = torch.bincount(data.val.labels, minlength=data.num_classes)
    return {
        "classes": data.num_classes,
        "val_images": len(data.val),
        "majority": counts.max().item() / len(data.val),
    }


def compute_saved(records: list[TrialRecord]) -> dict[str, Any]:
    """Training steps run vs. planned: what early abort (diverged) and pruning saved."""
    planned = sum(r.planned_steps for r in records)
    run = sum(r.steps for r in records)
    saved = {o: sum(r.planned_steps - r.steps for r in records if r.outcome == o) for o in ("diverged", "pruned")}
    return {
        "planned_steps": planned,
        "steps": run,
        "saved_steps": saved,
        "saved_fraction": (planned - run) / planned if planned else 0.0,
        "seconds": round(sum(r.seconds for r in records), 2),
    }
