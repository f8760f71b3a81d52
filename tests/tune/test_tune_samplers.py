"""`tune --sampler grid` enumerates its grid and stops there; `--sampler tpe` starts with its random trials."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from conftest import make_blobs

from convcoach.cli import main

FLAGS = [
    "--model",
    "cnn",
    "--depth",
    "1",
    "--width",
    "4",
    "--batch-size",
    "32",
    "--augment",
    "none",
    "--epochs",
    "1",
    "--quiet",
    "--no-report",
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def blobs(tmp_path_factory) -> Path:
    x, y = make_blobs(n_per_class=20)
    path = tmp_path_factory.mktemp("data") / "blobs.npz"
    np.savez(path, x=x, y=y)
    return path


def trials(out: Path) -> list[dict[str, str]]:
    with open(out / "trials.csv") as handle:
        return list(csv.DictReader(handle))


def test_grid_sampler_runs_every_grid_point_once_and_stops_at_the_grid_size(blobs, tmp_path, capsys):
    out = tmp_path / "grid"
    code = main(
        [
            "tune",
            "--data",
            f"npz:{blobs}",
            *FLAGS,
            "--space",
            "lr=0.01..0.1:log",
            "--sampler",
            "grid",
            "--grid-points",
            "3",
            "--trials",
            "10",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert "(3 grid points)" in capsys.readouterr().out
    rows = trials(out)
    assert len(rows) == 3  # not the 10 trials asked for: the study stops when the grid is exhausted
    assert sorted(float(r["lr"]) for r in rows) == pytest.approx([0.01, 10**-1.5, 0.1])  # log-spaced


def test_tpe_sampler_starts_with_half_the_trials_at_random(blobs, tmp_path, monkeypatch, capsys):
    made = []
    original = optuna.samplers.TPESampler

    def spy(*args, **kwargs):
        made.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(optuna.samplers, "TPESampler", spy)
    out = tmp_path / "tpe"
    code = main(
        [
            "tune",
            "--data",
            f"npz:{blobs}",
            *FLAGS,
            "--space",
            "lr=1e-3..0.1:log",
            "--sampler",
            "tpe",
            "--trials",
            "4",
            "--out",
            str(out),
        ]
    )
    assert code == 0 and "tpe sampler" in capsys.readouterr().out
    # optuna.create_study builds a default TPESampler() too; the search replaces it with its own
    assert [k["n_startup_trials"] for k in made if "n_startup_trials" in k] == [2]  # max(1, min(10, 4 // 2))
    rows = trials(out)
    assert len(rows) == 4 and all(1e-3 <= float(r["lr"]) <= 0.1 for r in rows)
    assert len({r["lr"] for r in rows}) == 4


def test_a_resumed_grid_study_runs_the_points_it_has_not_run(blobs, tmp_path, capsys):
    """A trial keeps an index into the shuffled grid: the rerun shuffles alike (the study's seed, not the process's)."""
    command = ["tune", "--data", f"npz:{blobs}", *FLAGS, "--space", "lr=0.01..0.1:log", "--sampler", "grid"]
    command += ["--grid-points", "4", "--out", str(tmp_path / "grid")]
    assert main([*command, "--trials", "1"]) == 0
    assert main([*command, "--trials", "4"]) == 0
    lrs = sorted(float(r["lr"]) for r in trials(tmp_path / "grid"))
    assert lrs == pytest.approx([0.01, 10**-1 / 10 ** (2 / 3), 10**-1 / 10 ** (1 / 3), 0.1])  # each point once
