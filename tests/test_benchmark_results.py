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

    long = json.loads((RESULTS / "long_recipe_v7_seeds_xeon.json").read_text())
    runs = long["runs"]
    assert [(r["seed"], r["test_accuracy"], r["epochs"]) for r in runs] == [(0, 0.9515, 29), (1, 0.9511, 34)]
    assert long["mean_test_accuracy"] == round(sum(r["test_accuracy"] for r in runs) / 2, 4) == 0.9513
    row = readme_line(readme, "`results/long_recipe_v7_seeds_xeon.json`")
    assert f"**{long['mean_test_accuracy'] * 100:.2f}%** mean" in row
    assert f"({runs[0]['test_accuracy'] * 100:.2f}%, {runs[1]['test_accuracy'] * 100:.2f}%; " in row
    assert f"{long['mean_test_accuracy_without_tta'] * 100:.2f}% without TTA" in row
    assert f"| {minutes(runs[0]['wall_seconds'])}, {minutes(runs[1]['wall_seconds'])} |" in row  # 28 min 4 s
    assert all(r["wall_seconds"] < 30 * 60 for r in runs)

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


def test_the_readme_coach_score_is_the_one_in_the_catalogue_file():
    catalogue = json.loads((RESULTS / "coach_faults_session24.json").read_text())
    rows = catalogue["rows"]
    faults = [r for r in rows if r["expected"] != ["healthy"]]
    healthy = [r for r in rows if r["expected"] == ["healthy"]]
    right = sum(r["grade"] == "right" for r in faults)
    false_alarms = sum(r["grade"] != "right" for r in healthy)
    assert (right, len(faults), false_alarms, len(healthy)) == (233, 239, 0, 101)
    text = " ".join((RESULTS.parents[1] / "README.md").read_text().split())
    assert f"**faults {right}/{len(faults)} right**" in text
    assert f"**{false_alarms}/{len(healthy)} healthy runs** with a false warning" in text
