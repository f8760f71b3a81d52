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
