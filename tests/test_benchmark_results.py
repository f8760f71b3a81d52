"""The measured figures the README cites are machine-readable: every results/*.json parses."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def test_every_benchmark_result_file_is_valid_json():
    files = sorted(RESULTS.glob("*.json"))
    assert len(files) >= 10
    broken = []
    for path in files:
        try:
            json.loads(path.read_text())
        except json.JSONDecodeError:
            broken.append(path.name)
    assert broken == []


def readme_line(readme: str, *needles: str) -> str:
    """The one README line that contains every needle."""
    lines = [line for line in readme.splitlines() if all(n in line for n in needles)]
    assert len(lines) == 1, (needles, lines)
    return lines[0]


def minutes(seconds: float) -> str:
    return f"{int(round(seconds)) // 60} min {int(round(seconds)) % 60} s"


def test_the_readme_headline_figures_are_the_ones_in_the_result_files():
    readme = (RESULTS.parents[1] / "README.md").read_text()
    default = json.loads((RESULTS / "default_recipe.json").read_text())
    assert (default["test_accuracy"], default["test_accuracy_without_tta"], default["epochs"]) == (0.9403, 0.9363, 20)
    row = readme_line(readme, "`benchmarks/results/default_recipe.json`")
    assert row.startswith(
        f"| **default** (no flags) | **{default['test_accuracy'] * 100:.2f}%** "
        f"({default['test_accuracy_without_tta'] * 100:.2f}% without TTA) | **{minutes(default['wall_seconds'])}**"
    )
    assert f"({round(default['wall_seconds'])} s; {round(default['train_seconds'])} s training)" in row  # 250 s; 241 s
    assert (
        f"test accuracy: {default['test_accuracy'] * 100:.2f}% with flip TTA "
        f"({default['test_accuracy_without_tta'] * 100:.2f}% without)"
    ) in default["log"][0]

    long = json.loads((RESULTS / "long_recipe_v6_bf16.json").read_text())
    assert (long["test_accuracy"], long["test_accuracy_without_tta"], long["epochs"]) == (0.95, 0.9473, 47)
    row = readme_line(readme, "`results/long_recipe_v6_bf16.json`")
    assert f"**{long['test_accuracy'] * 100:.2f}%** ({long['test_accuracy_without_tta'] * 100:.2f}% without TTA" in row
    assert (
        f"| {long['epochs']} (planned {long['epochs']}" in row and f"**{minutes(long['wall_seconds'])}**" in row
    )  # 26 min 59 s

    overhead = json.loads((RESULTS / "overhead_interleaved_instruments.json").read_text())
    assert overhead["ratio"] == 1.0207 and overhead["steps"] == 419 and overhead["precision"] == "bf16"
    assert overhead["monitors"] is True  # the coach's monitors and instruments on, as a default run has them
    text = " ".join(readme.split())  # the sentence wraps across lines
    assert (
        f"**{overhead['ratio']:.3f}** ({(overhead['ratio'] - 1) * 100:.1f}%, within the 3% bar; median step "
        f"{overhead['trainer_step_ms_median']} vs {overhead['hand_step_ms_median']} ms over {overhead['steps']} steps"
        in text
    )  # **1.021** (2.1%
    assert "`results/overhead_interleaved_instruments.json`" in text
    bench = (RESULTS.parent / "README.md").read_text()
    assert (
        f"measured {overhead['ratio']:.3f} with every monitor on: `results/overhead_interleaved_instruments.json`"
        in bench
    )
