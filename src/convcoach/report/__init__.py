"""The HTML run report and run comparison: self-contained pages of figures and tables."""
from .compare import compare_runs
from .run_report import RunArtifacts, write_run_report

__all__ = ["RunArtifacts", "compare_runs", "write_run_report"]
