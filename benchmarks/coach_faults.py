"""Score the coach on its fault catalogue (benchmarks/faults_catalogue.py): train every fault briefly,
read the end-of-train diagnosis, and grade it right / partly / wrong against the planted cause and fix.

    python benchmarks/coach_faults.py                 # every fault, the tuned and held-out parts apart
    python benchmarks/coach_faults.py --part held-out # only the third kept aside while the rules were tuned
    python benchmarks/coach_faults.py --only adam_lr_1 reg_l2_1

Right: the first warning or failure names an expected cause, its fixes include the expected option and
none of them is already in effect. Partly: the cause is found but not first, or without that fix.
Healthy runs are right when nothing is warned or failed (notes are allowed)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faults_catalogue import BASE, CATALOGUE, Fault, build_model, fashion, make_data  # noqa: E402

from convcoach.coach.advice import in_effect  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "coach_faults.json"


def grade(fault: Fault, diagnosis: dict[str, Any], options: dict[str, Any]) -> tuple[str, str]:
    """(right | partly | wrong, why)."""
    alarms = [f for f in diagnosis["findings"] if f["severity"] in ("fail", "warn")]
    if fault.healthy:
        if not alarms:
            return "right", "no warning"
        return "wrong", f"false {alarms[0]['severity']}: {alarms[0]['cause']}"
    if not alarms:
        found = [f["cause"] for f in diagnosis["findings"]]
        return ("partly", "only as a note") if fault.expect & set(found) else ("wrong", "called healthy")
    top = alarms[0]
    if top["cause"] not in fault.expect:
        later = [f["cause"] for f in diagnosis["findings"][1:]]
        if fault.expect & set(later):
            return "partly", f"first named {top['cause']}"
        return "wrong", f"named {top['cause']}"
    stale = [s for s in (in_effect(fix, options) for fix in top["fixes"]) if s]
    if stale:
        return "partly", f"suggests {stale[0]}, already in effect"
    if len(top["fixes"]) > 3:
        return "partly", f"{len(top['fixes'])} fixes (at most 3)"
    if fault.fix and not any(fault.fix in fix for fix in top["fixes"] + [top["evidence"]]):
        return "partly", f"no fix with {fault.fix}"
    return "right", ""


def run_fault(fault: Fault, folder: Path, source: Any) -> dict[str, Any]:
    from convcoach import TrainConfig, Trainer

    options = {**BASE, **fault.options, "out": str(folder / fault.name)}
    if options.get("model") == "cnn":
        options.setdefault("width", 16)  # half the default width: 4x fewer FLOPs, the same faults
    if fault.data:
        options["data"] = make_data(fault.data, folder, source)
    config = TrainConfig(**options)
    model = build_model(fault, config, (1, 28, 28), 10) if fault.api else None
    began = time.perf_counter()
    summary = Trainer(config, model=model).fit()
    seconds = time.perf_counter() - began
    diagnosis = summary["diagnosis"]
    verdict, why = grade(fault, diagnosis, config.to_dict())
    alarms = [f for f in diagnosis["findings"] if f["severity"] in ("fail", "warn")]
    top = alarms[0] if alarms else (diagnosis["findings"][0] if diagnosis["findings"] else None)
    return {
        "fault": fault.name,
        "kind": fault.kind,
        "part": fault.part,
        "what": fault.what,
        "expected": sorted(fault.expect) or ["healthy"],
        "coach": top["cause"] if top else "healthy",
        "words": f"{top['title']}: {top['evidence']}" if top else "healthy",
        "fixes": top["fixes"] if top else [],
        "grade": verdict,
        "why": why,
        "test_accuracy": summary.get("test_accuracy"),
        "seconds": round(seconds, 1),
        "findings": [f"{f['severity']} {f['cause']}: {f['evidence']}" for f in diagnosis["findings"]],
        "facts": diagnosis.get("facts", {}),
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| fault | part | expected | the coach's verdict | first fix | grade |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        words = r["coach"] if r["coach"] == "healthy" else f"{r['coach']}"
        fix = (r["fixes"][0] if r["fixes"] else "").replace("|", "/")
        note = f" ({r['why']})" if r["why"] and r["grade"] != "right" else ""
        lines.append(
            f"| {r['fault']} | {r['part']} | {', '.join(r['expected'])} | {words} | {fix} | {r['grade']}{note} |"
        )
    return "\n".join(lines)


KINDS = ["optimization", "regularization", "initialization", "normalization", "data", "healthy"]


def by_kind(rows: list[dict[str, Any]]) -> str:
    """Right / total per kind of fault, the tuned and held-out parts apart."""
    lines = ["| kind | tuned: right | held out: right | fresh: right |", "| --- | --- | --- | --- |"]
    for kind in KINDS:
        cells = []
        for part in ("tuned", "held-out", "fresh"):
            chosen = [r for r in rows if r["kind"] == kind and r["part"] == part]
            right = sum(r["grade"] == "right" for r in chosen)
            cells.append(f"{right}/{len(chosen)}" if chosen else "-")
        lines.append(f"| {kind} | {' | '.join(cells)} |")
    return "\n".join(lines)


def totals(rows: list[dict[str, Any]]) -> str:
    out = []
    for part in ("tuned", "held-out", "fresh", "all"):
        chosen = [r for r in rows if part == "all" or r["part"] == part]
        if not chosen:
            continue
        faults = [r for r in chosen if r["kind"] != "healthy"]
        healthy = [r for r in chosen if r["kind"] == "healthy"]
        right = sum(r["grade"] == "right" for r in faults)
        partly = sum(r["grade"] == "partly" for r in faults)
        false = sum(r["grade"] != "right" for r in healthy)
        out.append(
            f"{part}: faults right {right}/{len(faults)} ({right / max(len(faults), 1):.0%}), partly {partly}, "
            f"wrong {len(faults) - right - partly}; healthy runs with a false warning or failure {false}/{len(healthy)}"
        )
    return "\n".join(out)


def host() -> dict[str, Any]:
    """The CPU (model name, bf16/AMX flags) and torch's CPU capability: which machine gave these figures."""
    import torch
    from monitor_overhead import host as cpu

    return {
        **cpu(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["tuned", "held-out", "fresh", "all"], default="all")
    parser.add_argument("--only", nargs="*", help="fault names")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the rows are written")
    parser.add_argument("--facts", action="store_true", help="print each run's findings and measured facts")
    args = parser.parse_args(argv)
    logging.getLogger("convcoach").setLevel(logging.ERROR)
    chosen = [
        f for f in CATALOGUE if (args.part == "all" or f.part == args.part) and (not args.only or f.name in args.only)
    ]
    source = fashion()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fault in chosen:
            row = run_fault(fault, Path(tmp), source)
            rows.append(row)
            print(
                f"{row['fault']:28s} {row['grade']:7s} {row['coach']:22s} {row['why']}  ({row['seconds']}s)", flush=True
            )
            if args.facts:
                print("   ", "\n    ".join(row["findings"]), "\n   ", row["facts"], flush=True)
    print()
    print(table(rows))
    print()
    print(by_kind(rows))
    print()
    print(totals(rows))
    if not args.only:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"part": args.part, "host": host(), "rows": rows, "by_kind": by_kind(rows), "totals": totals(rows)}
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
