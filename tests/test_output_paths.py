"""--out is checked before any work: a file, a path under a file or an unwritable place is one line and exit 2 in
every command; default directories never collide; a command never replaces a training run's summary.json."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest

from convcoach import run_dirs
from convcoach.cli import main
from convcoach.errors import ConfigError

MISSING = "/nonexistent-convcoach-input"  # every input is missing: an --out error proves --out is checked first

# command -> argv before --out; each writes a directory (its summary.json) or one file of the suffix given
DIRECTORY_COMMANDS = {
    "train": ["train", "--data", f"npz:{MISSING}.npz"],
    "finetune": ["finetune", "--from", f"{MISSING}.pt", "--data", f"npz:{MISSING}.npz"],
    "tune": ["tune", "--data", f"npz:{MISSING}.npz", "--space", "lr=0.01..0.1:log"],
    "eval": ["eval", "--checkpoint", MISSING],
    "predict": ["predict", "--checkpoint", MISSING, f"{MISSING}.png"],
    "knn": ["knn", "--data", f"npz:{MISSING}.npz"],
    "check": ["check", "--data", f"npz:{MISSING}.npz"],
    "stats": ["stats"],
    "inspect": ["inspect", "--checkpoint", MISSING],
}
FILE_COMMANDS = {
    "export": (["export", "--checkpoint", MISSING], "model.pt"),
    "augment": (["augment", "--data", f"npz:{MISSING}.npz", "--augment", "hflip"], "grid.png"),
    "features": (["features", "--checkpoint", MISSING, "--data", f"npz:{MISSING}.npz"], "features.npz"),
    "predict": (["predict", "--checkpoint", MISSING, f"{MISSING}.png"], "predictions.csv"),
    "compare": (["compare", MISSING], "compare.html"),
    "report": (["report", MISSING], "report.html"),
}


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A file, and a directory that os.access calls unwritable (root writes anywhere: the check asks os.access)."""
    (tmp_path / "somefile.txt").write_text("not a directory\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    monkeypatch.chdir(tmp_path)
    return {"file": tmp_path / "somefile.txt", "locked": locked}


def assert_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], out: Path, problem: str) -> None:
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(rf"convcoach: error: --out {re.escape(str(out))}:? {problem}[^\n]*\n", err), err


@pytest.mark.parametrize("command", DIRECTORY_COMMANDS)
def test_a_directory_out_that_is_a_file_under_a_file_or_unwritable_is_one_line(command, places, capsys):
    argv, file = DIRECTORY_COMMANDS[command], places["file"]
    assert_one_line(capsys, argv, file, "is a file")
    assert_one_line(capsys, argv, file / "run", f"lies under the file {re.escape(str(file))}$")
    assert_one_line(capsys, argv, places["locked"] / "run", r"not writable \(permission denied\)$")
    assert_one_line(capsys, argv, places["locked"], r"not writable \(permission denied\)$")
    assert not list(places["locked"].iterdir()) and not Path("runs").exists()


@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_a_file_out_that_is_a_directory_under_a_file_or_unwritable_is_one_line(command, places, capsys):
    argv, name = FILE_COMMANDS[command]
    file = places["file"]
    if command in ("export", "compare", "report"):  # the others' suffix rule already refuses a directory
        assert_one_line(capsys, argv, places["locked"].parent, "is a directory, not a file name$")
    assert_one_line(capsys, argv, file / name, f"lies under the file {re.escape(str(file))}$")
    assert_one_line(capsys, argv, places["locked"] / name, r"not writable \(permission denied\)$")
    assert not list(places["locked"].iterdir())


def test_a_place_root_cannot_write_either_is_found_without_os_access(tmp_path):
    """Root passes os.access everywhere: the check also creates a (nameless) file to be sure."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir(mode=0o500)
    else:
        folder = Path("/sys")
        try:
            with tempfile.TemporaryFile(dir=folder):
                pytest.skip("root can create files in /sys here: no unwritable place to test")
        except OSError:
            pass
    expected = rf"--out {re.escape(str(folder / 'run'))}: not writable \(permission denied\)"
    with pytest.raises(ConfigError, match=f"^{expected}$"):
        run_dirs.prepare_out_dir(folder / "run")
    with pytest.raises(ConfigError, match=r"^--out .*model\.pt: not writable \(permission denied\)$"):
        run_dirs.prepare_out_file(folder / "model.pt")


def test_an_existing_file_may_be_replaced_and_a_missing_folder_is_fine(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"old")
    assert run_dirs.prepare_out_file(tmp_path / "model.pt") == tmp_path / "model.pt"
    assert run_dirs.prepare_out_dir(tmp_path / "a" / "b" / "c") == tmp_path / "a" / "b" / "c"
    assert not (tmp_path / "a").exists()  # checked, not created


def test_default_directories_of_one_second_differ_and_sort(tmp_path, monkeypatch, frozen_clock):
    monkeypatch.chdir(tmp_path)
    made = [run_dirs.default_run_dir() for _ in range(3)]
    assert [str(p) for p in made] == ["runs/20260102-030405", "runs/20260102-030405-2", "runs/20260102-030405-3"]
    assert all(p.is_dir() for p in made) and sorted(made) == made
    checked = run_dirs.output_dir(None, "eval-")  # checked before the work, created after it
    assert not checked.exists()
    run_dirs.default_run_dir("eval-")  # another command took the name meanwhile
    assert str(run_dirs.make_output_dir(checked, None)) == "runs/eval-20260102-030405-2"


def test_a_failed_command_without_out_leaves_no_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--checkpoint", MISSING]) == 2
    assert MISSING in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["eval", "predict", "knn", "check"])
def test_a_command_never_replaces_a_training_runs_summary(command, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: cnn\n")
    (run / "summary.json").write_text(json.dumps({"test_accuracy": 0.9}))
    argv = DIRECTORY_COMMANDS[command]
    assert main([*argv, "--out", str(run)]) == 2
    assert capsys.readouterr().err == (
        f"convcoach: error: --out {run} holds a training run (config.yaml): this command's summary.json would "
        "replace the run's; give another --out\n"
    )
    assert json.loads((run / "summary.json").read_text()) == {"test_accuracy": 0.9}
