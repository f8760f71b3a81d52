"""Augmentation modules register their ops by being in the data package: no import list to edit."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import convcoach.data
from convcoach.data import augment
from convcoach.data.augment import AUGMENTS, GALLERY, import_augment_modules, parse_augment

OP_MODULE = """
from convcoach.data.augment import AUGMENTS


@AUGMENTS.register("{op}")
def _build(spec, args):
    return lambda x, generator: -x
"""


@pytest.fixture
def scratch_augments(monkeypatch):
    """Ops and modules added by a test are gone after it."""
    monkeypatch.setattr(AUGMENTS, "_items", dict(AUGMENTS._items))
    before = set(sys.modules)
    yield AUGMENTS
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_the_gallery_is_every_augment_module_of_the_package():
    here = Path(augment.__file__).parent
    assert GALLERY == sorted(path.stem for path in here.glob("augment_*.py"))
    assert all(f"convcoach.data.{name}" in sys.modules for name in GALLERY)
    assert {"hflip", "translate", "brightness", "cutout", "rotate", "randaugment"} <= set(AUGMENTS.names())


def test_a_module_dropped_into_the_package_registers_its_op(tmp_path, monkeypatch, scratch_augments):
    (tmp_path / "augment_zz_dropped.py").write_text(OP_MODULE.format(op="test_dropped"))
    (tmp_path / "not_an_augment.py").write_text("raise AssertionError('only augment_* modules are imported')\n")
    monkeypatch.setattr(convcoach.data, "__path__", [*convcoach.data.__path__, str(tmp_path)])
    # what augment.py runs when the package is imported
    assert import_augment_modules("convcoach.data", convcoach.data.__path__) == [*GALLERY, "augment_zz_dropped"]
    assert "test_dropped" in AUGMENTS
    x = torch.ones(2, 1, 4, 4)
    assert torch.equal(parse_augment("hflip:0,test_dropped")(x, torch.Generator().manual_seed(0)), -x)


def test_discovery_on_another_package(tmp_path, monkeypatch, scratch_augments):
    package = tmp_path / "extra_ops_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "augment_one.py").write_text(OP_MODULE.format(op="test_other_package"))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_augment_modules("extra_ops_pkg", [str(package)]) == ["augment_one"]
    assert "test_other_package" in AUGMENTS
