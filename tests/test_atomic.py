"""Atomic writes on a full disk (an injected ENOSPC): a one-line error naming the file, what it needs and
what is free, no temporary file left, the previous file intact; a killed write's leftovers removed."""

from __future__ import annotations

import builtins
import errno
import io
import os
import re
import shutil

import pytest
import torch

from convcoach import atomic
from convcoach.atomic import byte_size, remove_stale_temps, staged
from convcoach.cli import main
from convcoach.errors import WriteError
from convcoach.render.html import Page
from convcoach.train.checkpoint import save_checkpoint


def fill_disk(monkeypatch, room: int = 4096) -> None:
    """The atomic writer's files get `room` bytes before a write fails as the kernel's would (ENOSPC); the
    disk reports 5000 bytes free."""

    class FullDisk(io.FileIO):
        def write(self, data) -> int:
            if self.tell() + len(data) > room:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    def fake_open(path, mode="r", *args, **kwargs):
        return FullDisk(path, "w") if "w" in mode else builtins.open(path, mode, *args, **kwargs)

    monkeypatch.setattr(atomic, "open", fake_open, raising=False)
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 5000))


@pytest.fixture
def full_disk(monkeypatch):
    fill_disk(monkeypatch)


def _message(path, needs: str) -> str:
    return re.escape(
        f"{path}: cannot write it: No space left on device (it needs {needs}, 5.0 kB free in {path.parent}); "
        "free some space or write it elsewhere"
    )


def test_a_checkpoint_on_a_full_disk_is_a_write_error_and_the_previous_one_stays(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"model_state": {"weight": torch.ones(10)}}, path)
    fill_disk(monkeypatch)  # torch's zip writer fails mid-file: a RuntimeError raised while handling the OSError
    with pytest.raises(WriteError, match=f"^{_message(path, 'about 1.0 MB')}$"):
        save_checkpoint({"model_state": {"weight": torch.ones(250_000)}}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file
    assert torch.equal(torch.load(path, weights_only=True)["model_state"]["weight"], torch.ones(10))


def test_the_report_page_on_a_full_disk_is_a_write_error(tmp_path, full_disk):
    page = Page("run", "x" * 5000)
    size = len(page.render().encode())
    with pytest.raises(WriteError, match=f"^{_message(tmp_path / 'report.html', f'about {byte_size(size)}')}$"):
        page.write(tmp_path / "report.html")
    assert list(tmp_path.iterdir()) == []


def test_a_write_that_fails_without_a_size_says_how_much_was_written(tmp_path, full_disk):
    def write(handle):
        handle.write(b"x" * 4000)
        handle.write(b"x" * 4000)

    with pytest.raises(WriteError, match=_message(tmp_path / "out.bin", "more than 4.0 kB")):
        atomic.atomic_write_bytes(tmp_path / "out.bin", write)
    assert list(tmp_path.iterdir()) == []


def test_other_os_errors_name_the_file_and_the_reason(tmp_path):
    message = rf"^{re.escape(str(tmp_path / 'x.onnx'))}: cannot write it: Permission denied$"
    with pytest.raises(WriteError, match=message), staged(tmp_path / "x.onnx"):
        raise RuntimeError("the library's own words") from PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(RuntimeError, match="a bug, not the disk"), staged(tmp_path / "x.onnx"):
        raise RuntimeError("a bug, not the disk")
    assert list(tmp_path.iterdir()) == []


def test_a_staged_file_is_renamed_into_place_with_open_permissions(tmp_path):
    with staged(tmp_path / "model.onnx", size=3) as tmp:
        assert re.fullmatch(r"\.model\.onnx\.[0-9a-f]{8}\.tmp", tmp.name)
        tmp.write_bytes(b"abc")
    assert (tmp_path / "model.onnx").read_bytes() == b"abc" and len(list(tmp_path.iterdir())) == 1
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "model.onnx").stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would give


def test_only_the_temporary_files_killed_writes_leave_are_removed(tmp_path):
    ours = [".last.pt.k2j4h_g6.tmp", ".report.html.0123abcd.tmp"]  # tempfile.mkstemp's, then staged's
    others = [".notes.tmp", "last.pt.0123abcd.tmp", ".last.pt.abc.tmp", "metrics.jsonl", ".last.pt.0123abcd.part"]
    for name in ours + others:
        (tmp_path / name).write_text("x")
    assert [p.name for p in remove_stale_temps(tmp_path)] == ours
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)


@pytest.mark.parametrize(
    ("count", "text"), [(0, "0 bytes"), (999, "999 bytes"), (4096, "4.1 kB"), (2_252_085, "2.3 MB")]
)
def test_byte_sizes_read_like_df(count, text):
    assert byte_size(count) == text


def test_cli_train_on_a_full_disk_exits_2_with_one_line(blobs_npz, tmp_path, capsys, full_disk, single_thread):
    run = tmp_path / "run"
    argv = ["train", "--data", f"npz:{blobs_npz}", "--model", "cnn", "--depth", "2", "--width", "8", "--epochs", "1"]
    assert main([*argv, "--out", str(run), "--no-report", "--no-monitors", "--quiet", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.fullmatch(
        rf"convcoach: error: {re.escape(str(run / 'best.pt'))}: cannot write it: No space left on device "
        rf"\(it needs about [0-9.]+ kB, 5\.0 kB free in {re.escape(str(run))}\); "
        r"free some space or write it elsewhere\n",
        err,
    )
    assert not list(run.glob(".*.tmp")) and not (run / "best.pt").exists()
