"""`convcoach stats` and the activation statistics behind it: the lectures' init tables, and their reading."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from convcoach import TrainConfig
from convcoach.cli import main
from convcoach.coach.probe import init_stats
from convcoach.coach.stats import LayerStats, activation_stats, interpret

pytestmark = pytest.mark.usefixtures("single_thread")

# lecture 004, "Weight Initialization: Activation Statistics": 6 x 4096 tanh layers on randn(16, 4096)
LECTURE = ["--model", "mlp", "--depth", "6", "--width", "4096", "--batch", "16"]
SMALL_NORMAL_STDS = [0.49, 0.29, 0.18, 0.11, 0.07, 0.05]
XAVIER_STDS = [0.63, 0.49, 0.41, 0.36, 0.32, 0.30]


def _lecture_stds(activation: str, init: str) -> list[float]:
    config = TrainConfig(model="mlp", depth=6, width=4096, activation=activation, init=init, norm="none")
    return [layer.std for layer in init_stats(config, batch=16).layers]


def test_small_normal_init_reproduces_the_lecture_table():
    # each layer multiplies the std by about 0.01 * sqrt(4096) = 0.64 (tanh is ~linear there)
    stds = _lecture_stds("tanh", "normal:0.01")
    assert len(stds) == 6
    assert all(later < earlier * 0.7 for earlier, later in zip(stds, stds[1:]))
    assert stds == pytest.approx(SMALL_NORMAL_STDS, abs=0.015)


def test_xavier_init_reproduces_the_lecture_table():
    assert _lecture_stds("tanh", "xavier") == pytest.approx(XAVIER_STDS, abs=0.015)


def test_he_init_keeps_relu_activations_scaled_while_xavier_collapses_them():
    he = _lecture_stds("relu", "kaiming")
    xavier = _lecture_stds("relu", "xavier")
    assert max(he) / min(he) < 1.05  # "just right": the same std in every layer
    # Xavier assumes a zero-centred activation: each ReLU layer halves the variance (std x 0.71)
    assert [b / a for a, b in zip(xavier, xavier[1:])] == pytest.approx([0.71] * 5, abs=0.02)


def test_stats_cli_prints_the_table_and_warns_about_the_small_init(capsys):
    assert main(["stats", *LECTURE, "--activation", "tanh", "--init", "normal:0.01"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if "Tanh" in line]
    assert [float(row[9]) for row in rows] == SMALL_NORMAL_STDS  # | layer | module | kind | mean | std | ...
    assert "warn: activations shrink towards zero by layer 5 (std 0.49 -> 0.046): init std too small" in out


def test_stats_json_and_histograms(tmp_path, capsys):
    out_dir = tmp_path / "stats"
    assert main(["stats", *LECTURE, "--activation", "tanh", "--init", "xavier", "--json", "--out", str(out_dir)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [round(layer["std"], 2) for layer in payload["layers"]] == pytest.approx(XAVIER_STDS, abs=0.015)
    assert payload["input_shape"] == [16, 4096, 1, 1] and payload["findings"] == []
    assert sorted(p.name for p in out_dir.glob("*.png")) == [f"hist_{i:02d}_tanh.png" for i in range(1, 7)]
    assert json.loads((out_dir / "summary.json").read_text())["init"] == "xavier"


def test_stats_on_a_data_batch_of_a_conv_net(blobs_npz, capsys):
    code = main(
        [
            "stats",
            "--data",
            f"npz:{blobs_npz}",
            "--model",
            "cnn",
            "--depth",
            "2",
            "--width",
            "8",
            "--input",
            "data",
            "--batch",
            "32",
            "--json",
        ]
    )
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and payload["input"] == "data" and payload["input_shape"] == [32, 1, 12, 12]
    assert [layer["kind"] for layer in payload["layers"]] == ["ReLU"] * 5
    # batch norm re-standardizes every layer: post-ReLU std of a unit Gaussian is sqrt(1/2 - 1/(2 pi)) = 0.58
    assert all(0.5 < layer["std"] < 0.7 for layer in payload["layers"])


def test_dead_units_are_units_zero_for_the_whole_batch():
    layer = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    with torch.no_grad():
        layer[0].weight.copy_(torch.eye(4))
        layer[0].bias.copy_(torch.tensor([0.0, 0.0, -100.0, -100.0]))  # units 3 and 4 never fire
    stats = activation_stats(layer, torch.randn(64, 4))
    assert stats[0].dead == 0.5 and stats[0].kind == "ReLU"


def _layers(stds: list[float], saturated: float | None = None, dead: float | None = None) -> list[LayerStats]:
    return [LayerStats(i, str(i), "Tanh", 0.0, s, saturated, dead) for i, s in enumerate(stds, start=1)]


@pytest.mark.parametrize(
    ("layers", "severity", "text"),
    [
        (
            _layers(SMALL_NORMAL_STDS),
            "warn",
            "activations shrink towards zero by layer 5 (std 0.49 -> 0.05): init std too small",
        ),
        (_layers([0.5, 0.05, 0.005, 0.0005]), "fail", "shrink towards zero by layer 2"),
        (
            _layers([0.9, 0.95, 0.97], saturated=0.8),
            "fail",
            "saturated: 80% of layer 1 (Tanh) outputs sit in the flat tails: init std too large",
        ),
        (_layers([0.1, 0.6, 2.0, 7.0]), "warn", "activations grow layer by layer"),
        (_layers([0.5, 0.5, 0.5], dead=1.0), "fail", "dead units: 100% of the ReLU units of layer 1"),
    ],
)
def test_interpret_names_the_problem(layers, severity, text):
    findings = interpret(layers)
    assert findings[0].severity == severity and text in findings[0].message


def test_interpret_is_quiet_for_well_scaled_layers():
    assert interpret(_layers(XAVIER_STDS)) == []
