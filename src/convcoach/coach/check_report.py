"""Check results: one row per check (pass / warn / fail / skip), a rich table and check.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..files import write_json

STATUSES = ("pass", "skip", "warn", "fail")  # in order of severity
STYLE = {"pass": "green", "skip": "dim", "warn": "yellow", "fail": "bold red"}


@dataclass
class CheckResult:
    """What a check measured, in one line, and what to try when it is not a pass."""

    name: str
    status: str
    message: str
    fix: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")


def worst(statuses: list[str]) -> str:
    return max(statuses, key=STATUSES.index, default="pass")


@dataclass
class CheckReport:
    results: list[CheckResult]
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return worst([r.status for r in self.results])

    def get(self, name: str) -> CheckResult:
        """The result called `name` (KeyError listing the names when absent)."""
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no check result '{name}'; have: {', '.join(r.name for r in self.results)}")

    def to_dict(self) -> dict[str, Any]:
        counts = {status: sum(r.status == status for r in self.results) for status in STATUSES}
        return {
            "command": "check",
            "status": self.status,
            "counts": counts,
            "seconds": round(self.seconds, 2),
            "results": [asdict(r) for r in self.results],
            "config": self.config,
        }

    def write(self, path: str | Path) -> None:
        write_json(Path(path), self.to_dict())

    def render(self, console: Any = None) -> None:
        """Print the table (rich; plain text when not a terminal)."""
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        console = console or Console()
        table = Table(title=f"convcoach check: {self.status} ({self.seconds:.0f}s)", show_lines=False)
        for column in ("check", "status", "finding", "suggested fix"):
            table.add_column(column, overflow="fold")
        for r in self.results:
            table.add_row(r.name, f"[{STYLE[r.status]}]{r.status}[/]", escape(r.message), escape(r.fix))
        console.print(table)
