"""Every JSON file convcoach writes is standard JSON: a non-finite number (a diverged loss) is the string
"NaN", "Infinity" or "-Infinity" (protobuf's JSON mapping), read back as a float."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import small_config

from convcoach import TrainConfig, TrainingDiverged, train
from convcoach.coach.record import read_rows
from convcoach.errors import ConfigError
from convcoach.files import dumps_json, json_number, loads_json, write_json


def _strict(text: str):
    def refuse(name: str):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_are_written_as_strings_and_read_back_as_floats(tmp_path):
    value = {"loss": math.nan, "lr": math.inf, "low": -math.inf, "acc": np.float32(0.5), "steps": np.int64(3)}
    text = dumps_json(value)
    assert _strict(text) == {"loss": "NaN", "lr": "Infinity", "low": "-Infinity", "acc": 0.5, "steps": "3"}
    back = loads_json(text)
    assert math.isnan(back["loss"]) and back["lr"] == math.inf and back["low"] == -math.inf
    assert json_number(math.nan) == '"NaN"' and json_number(0.25) == "0.25"
    write_json(tmp_path / "s.json", [1.5, math.nan])
    assert _strict((tmp_path / "s.json").read_text()) == [1.5, "NaN"]


def test_a_diverged_run_writes_standard_json_that_the_coach_reads(tmp_path, blobs_npz):
    config = small_config(blobs_npz, tmp_path / "run", lr=5e5, epochs=2, optimizer="sgd", explosion_factor=1e300)
    with pytest.raises(TrainingDiverged) as raised:  # convcoach.train() raises where the CLI exits 1
        train(config)
    summary = raised.value.summary
    assert summary["status"] == "diverged"
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    rows = [_strict(line) for line in lines]  # no NaN/Infinity literals anywhere
    assert any(row.get("loss") in ("NaN", "Infinity") for row in rows)
    for name in ("summary.json", "env.json"):
        _strict((tmp_path / "run" / name).read_text())
    losses = [row["loss"] for row in read_rows(tmp_path / "run" / "metrics.jsonl") if row["kind"] == "iter"]
    assert not all(math.isfinite(v) for v in losses)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"lr": 1e308, "batch_size": 1024, "base_batch_size": 256},
            r"lr 1e\+308 x batch_size/base_batch_size "
            r"\(1024/256\) = inf: the peak learning rate must be at most 1e\+06",
        ),
        ({"lr": 2e6}, r"lr 2e\+06: the peak learning rate must be at most 1e\+06"),
        ({"init": "normal:-1"}, r"init 'normal:-1': the standard deviation must be >= 0, got -1"),
    ],
)
def test_numbers_that_overflow_or_crash_torch_are_rejected_at_the_edge(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**values).validate()
