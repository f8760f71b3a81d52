"""The package's shape stays as ARCHITECTURE.md draws it: no two packages import each other, the
config is a leaf, every config spec field has a registered check, and SourceOptions is built in one place."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import convcoach
from convcoach.config import TrainConfig
from convcoach.registry import SPEC_CHECKS

ROOT = Path(__file__).resolve().parents[1]


def _structure():
    spec = importlib.util.spec_from_file_location("structure", ROOT / "benchmarks" / "structure.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_two_packages_import_each_other():
    figures = _structure().measure()
    assert figures["two_way_dependencies"] == []
    assert figures["packages_in_import_cycles"] == []  # nor through a third: the packages form layers


def test_config_imports_no_feature_package():
    structure = _structure()
    edges = structure.measure()["edges"]
    assert set(edges.get("config", [])) <= {"coerce", "errors", "files", "recipes", "registry"}


def test_source_options_are_built_in_one_place():
    assert _structure().measure()["source_options_constructions"] == 1


def test_every_spec_field_has_a_registered_check():
    kinds = {f.metadata["spec"] for f in dataclasses.fields(TrainConfig) if f.metadata.get("spec")}
    assert kinds == set(SPEC_CHECKS.names())
    assert {"data", "model", "augment", "tta"} <= kinds


def test_every_field_has_help_text():
    missing = [f.name for f in dataclasses.fields(TrainConfig) if not f.metadata.get("help")]
    assert missing == []


def test_version_is_written_once():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert convcoach.__version__ not in pyproject.split("[project]")[1].split("[")[0]


def test_architecture_names_every_module():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    package = ROOT / "src" / "convcoach"
    modules = [p for p in package.rglob("*.py") if p.stem not in ("__init__", "__main__")]
    assert [str(p.relative_to(package)) for p in modules if p.stem not in text] == []
    assert len(text.splitlines()) <= 60  # one screen
