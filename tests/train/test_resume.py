"""Resume: mid-epoch checkpoints (`checkpoint_every`), what a resume may change, what an interrupt says."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import small_config, wait_for_epochs

from convcoach import TrainConfig, Trainer
from convcoach.config import load_yaml
from convcoach.data import BatchLoader, Normalizer
from convcoach.data.sources import Split
from convcoach.errors import ConfigError
from convcoach.train.callbacks import Callback
from convcoach.train.checkpoint import load_checkpoint
from convcoach.train.signals import Interrupted


class _KillAt(Callback):
    """Raises KeyboardInterrupt (an in-process kill) at the end of iteration `step`, or right after
    its mid-epoch save when `after_save`."""

    order = 99  # after the checkpointer

    def __init__(self, step: int, after_save: bool = False) -> None:
        self.step, self.after_save = step, after_save

    def on_batch_end(self, trainer, loss):
        if trainer.state.step == self.step and not self.after_save:
            raise KeyboardInterrupt

    def on_checkpoint(self, trainer):
        if trainer.state.step == self.step and self.after_save:
            raise KeyboardInterrupt


def _rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


def _config(blobs_npz: Path, out: Path, **overrides):
    # 129 training images, batch 32: 4 iterations per epoch; flips, translation, dropout, mixup,
    # EMA and the monitors all draw or keep state that a mid-epoch resume must restore
    values = dict(
        epochs=3,
        checkpoint_every=3,
        augment=["hflip", "translate:1"],
        dropout=0.2,
        mixup=0.4,
        ema=0.9,
        monitor_every=2,
        schedule="onecycle",
        report=False,
        seed=5,
    )
    return small_config(blobs_npz, out, **{**values, **overrides})


# saves every 3 iterations inside an epoch (3, 6, 9) and at the epoch ends (4, 8, 12); killed right
# after a save, one iteration after one, or two after one: (step, epoch, batch) of last.pt
@pytest.mark.parametrize(
    ("kill", "saved_at"), [((3, True), (3, 0, 3)), ((7, False), (6, 1, 2)), ((11, False), (9, 2, 1))]
)
def test_run_killed_mid_epoch_resumes_to_identical_weights_and_metrics(
    blobs_npz, tmp_path, single_thread, kill, saved_at
):
    reference = Trainer(_config(blobs_npz, tmp_path / "reference")).fit()
    with pytest.raises(KeyboardInterrupt):
        Trainer(_config(blobs_npz, tmp_path / "killed"), callbacks=[_KillAt(*kill)]).fit()
    saved = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert (saved["state"]["step"], saved["state"]["epoch"], saved["loader_state"]["position"]) == saved_at
    assert saved["state"]["partial"][2] == 32 * saved_at[2]  # images seen so far in the interrupted epoch

    resumed = Trainer(_config(blobs_npz, tmp_path / "killed", resume=str(tmp_path / "killed"))).fit()
    ours, theirs = load_checkpoint(tmp_path / "killed" / "last.pt"), load_checkpoint(tmp_path / "reference" / "last.pt")
    assert all(torch.equal(ours["model_state"][k], theirs["model_state"][k]) for k in theirs["model_state"])
    assert _rows(tmp_path / "killed") == _rows(tmp_path / "reference")  # iterations, monitors and epochs, once each
    assert resumed["test_accuracy"] == reference["test_accuracy"]
    assert resumed["final"]["train_loss"] == reference["final"]["train_loss"]


def test_a_muon_run_killed_mid_epoch_resumes_to_identical_weights(blobs_npz, tmp_path, single_thread):
    # Muon keeps momentum buffers and each filter bank's initial norm: both must come back from last.pt
    muon = {"optimizer": "muon", "muon_lr": 0.05}
    Trainer(_config(blobs_npz, tmp_path / "reference", **muon)).fit()
    with pytest.raises(KeyboardInterrupt):
        Trainer(_config(blobs_npz, tmp_path / "killed", **muon), callbacks=[_KillAt(7, False)]).fit()
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["state"]["step"] == 6
    Trainer(_config(blobs_npz, tmp_path / "killed", resume=str(tmp_path / "killed"), **muon)).fit()
    ours, theirs = load_checkpoint(tmp_path / "killed" / "last.pt"), load_checkpoint(tmp_path / "reference" / "last.pt")
    assert all(torch.equal(ours["model_state"][k], theirs["model_state"][k]) for k in theirs["model_state"])
    assert _rows(tmp_path / "killed") == _rows(tmp_path / "reference")


def test_mid_epoch_saves_happen_every_n_iterations_but_not_twice_at_an_epoch_end(blobs_npz, tmp_path, single_thread):
    saves: list[tuple[int, int]] = []

    class Spy(Callback):
        def on_checkpoint(self, trainer):
            saves.append((trainer.state.epoch, trainer.state.step))

    Trainer(_config(blobs_npz, tmp_path / "run", epochs=2, checkpoint_every=2), callbacks=[Spy()]).fit()
    assert saves == [(0, 2), (1, 6)]  # iterations 4 and 8 end an epoch: the epoch-end save covers them


@pytest.mark.parametrize("streamed", [False, True])
def test_loader_state_mid_epoch_serves_the_rest_of_the_same_permutation(tmp_path, streamed):
    from PIL import Image

    images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 1, 2, 2).contiguous()
    split = Split(images, torch.arange(40))
    if streamed:  # decoded from files through a DataLoader, as for sets larger than memory
        files = [tmp_path / f"{i}.png" for i in range(40)]
        for path, image in zip(files, images):
            Image.fromarray(image[0].numpy()).save(path)
        split = Split(None, torch.arange(40), files, (1, 2, 2))

    def loader() -> BatchLoader:
        return BatchLoader(split, 8, Normalizer([0.0], [1.0]), shuffle=True, seed=1, num_workers=0)

    def pixels(batch: tuple[torch.Tensor, torch.Tensor]) -> list[float]:
        return batch[0][:, 0, 0, 0].tolist()  # the image content, not only the label

    full = loader()
    next(iter(full))  # epoch 1
    epoch2 = [pixels(b) for b in full]
    interrupted = loader()
    next(iter(interrupted))
    batches = iter(interrupted)
    served = [pixels(next(batches)) for _ in range(2)]
    state = interrupted.state_dict()
    assert state["position"] == 2
    fresh = loader()
    fresh.load_state_dict(state)
    rest = [pixels(b) for b in fresh]
    assert len(rest) == 3 and served + rest == epoch2
    assert fresh.state_dict()["position"] == 0  # the epoch finished: the next one starts at its first batch
    old_style = loader()
    old_style.load_state_dict({k: v for k, v in state.items() if k != "position"})  # checkpoints from before
    assert len(list(old_style)) == 5


def test_checkpoint_every_must_not_be_negative(blobs_npz, tmp_path):
    with pytest.raises(ConfigError, match="checkpoint_every is in iterations and must be >= 0"):
        _config(blobs_npz, tmp_path / "run", checkpoint_every=-1).validate()


@pytest.mark.slow
def test_single_process_mid_epoch_checkpoint_resumes_under_two_ddp_processes(blobs_npz, tmp_path):
    """The position counts global batches, which are the same samples for any process count."""
    reference = tmp_path / "reference"

    def config(out: Path):
        return small_config(
            blobs_npz, out, norm="group:4", epochs=3, checkpoint_every=3, report=False, schedule="onecycle"
        )

    Trainer(config(reference)).fit()
    with pytest.raises(KeyboardInterrupt):
        Trainer(config(tmp_path / "killed"), callbacks=[_KillAt(7)]).fit()
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["loader_state"]["position"] == 2  # saved at iteration 6
    result = subprocess.run(
        [sys.executable, "-m", "convcoach", "train", "--resume", str(tmp_path / "killed"), "--nproc", "2", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    ours, theirs = _rows(tmp_path / "killed"), _rows(reference)
    assert [r["kind"] for r in ours] == [r["kind"] for r in theirs]
    for a, b in zip(ours, theirs):  # DDP averages the same global batch: equal up to summation order
        for key in ("loss", "train_loss", "train_acc", "val_acc"):
            if key in b:
                assert a[key] == pytest.approx(b[key], abs=1e-4)


def test_an_interrupted_run_says_what_last_pt_holds_and_how_to_resume(blobs_npz, tmp_path, single_thread, caplog):
    with caplog.at_level("WARNING", logger="convcoach"), pytest.raises(KeyboardInterrupt):
        Trainer(_config(blobs_npz, tmp_path / "early"), callbacks=[_KillAt(2)]).fit()
    assert (
        "stopped at iteration 2 (epoch 1), before the first checkpoint (at iteration 3): nothing saved yet; "
        f"convcoach train --resume {tmp_path / 'early'} starts it over"
    ) in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="convcoach"), pytest.raises(KeyboardInterrupt):
        Trainer(_config(blobs_npz, tmp_path / "late"), callbacks=[_KillAt(11)]).fit()
    assert (
        f"stopped at iteration 11 (epoch 3); last.pt holds iteration 9, the 2 since are redone by: "
        f"convcoach train --resume {tmp_path / 'late'}"
    ) in caplog.text


def test_a_run_stopped_before_its_first_checkpoint_resumes_by_starting_over(blobs_npz, tmp_path, single_thread, caplog):
    # the SIGKILL version, compared with an uninterrupted run: tests/train/test_kills.py
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        Trainer(_config(blobs_npz, run, epochs=2), callbacks=[_KillAt(2)]).fit()
    saved = (run / "config.yaml").read_text()
    assert not (run / "last.pt").exists()
    with caplog.at_level("WARNING", logger="convcoach"):
        summary = Trainer(TrainConfig(resume=str(run), quiet=True)).fit()
    assert f"{run} has no last.pt (stopped before its first checkpoint): starting the run over" in caplog.text
    assert (summary["epochs_run"], summary["steps"]) == (2, 8)
    assert (run / "config.yaml").read_text() == saved  # the options it started with, `resume` still unset


def test_resume_of_a_directory_without_a_run_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot resume .*empty: it has neither last.pt nor config.yaml"):
        Trainer(TrainConfig(resume=str(tmp_path / "empty"), quiet=True))


def test_resume_with_a_binary_config_yaml_is_a_one_line_error(tmp_path):
    (tmp_path / "binary").mkdir()
    (tmp_path / "binary" / "config.yaml").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ConfigError, match=r"binary/config\.yaml: not UTF-8 text"):  # files.load_yaml's error
        Trainer(TrainConfig(resume=str(tmp_path / "binary"), quiet=True))


def test_resume_with_more_epochs_trains_on_with_the_schedule_replanned(blobs_npz, tmp_path, single_thread):
    run = tmp_path / "run"
    first = Trainer(small_config(blobs_npz, run, epochs=3, schedule="linear", report=False)).fit()
    assert first["final"]["lr"] == pytest.approx(0.0, abs=1e-12)  # the 3-epoch schedule ended
    summary = Trainer(TrainConfig(resume=str(run), epochs=5, quiet=True)).fit()
    assert summary["epochs_run"] == 5 and summary["steps"] == 20
    rows = [r for r in _rows(run) if r["kind"] == "epoch"]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    # linear decay re-planned over 20 steps: step 12 sits at 1 - 12/20 of the base LR, the last at 0
    lrs = {r["step"]: r["lr"] for r in _rows(run) if r["kind"] == "iter"}
    assert lrs[13] == pytest.approx(0.05 * (1 - 13 / 20)) and lrs[20] == pytest.approx(0.0, abs=1e-12)
    assert load_yaml(run / "config.yaml")["epochs"] == 5 and load_yaml(run / "config.yaml")["resume"] is None


def test_resume_refuses_options_that_cannot_change_mid_run(blobs_npz, tmp_path):
    run = tmp_path / "run"
    Trainer(small_config(blobs_npz, run, epochs=1, report=False)).fit()
    with pytest.raises(
        ConfigError,
        match=r"these differ and cannot change mid-run: lr 0.1 \(saved: 0.05\), batch_size 64 \(saved: 32\)\. "
        r"A resume may change only epochs, quiet, nproc, device, report",
    ):
        Trainer(TrainConfig(resume=str(run), lr=0.1, batch_size=64))
    with pytest.raises(ConfigError, match=r"out '.*elsewhere' \(saved: '.*run'\)"):
        Trainer(TrainConfig(resume=str(run), out=str(tmp_path / "elsewhere")))
    default_lr = tmp_path / "default-lr"  # lr unset: the run used adam's default 1e-3 (measured for every model)
    Trainer(small_config(blobs_npz, default_lr, epochs=1, report=False, lr=None, optimizer="adam")).fit()
    with pytest.raises(ConfigError, match=r"lr 0.1 \(saved: unset, so adam's default 0.001\)"):
        Trainer(TrainConfig(resume=str(default_lr), lr=0.1))
    assert Trainer(TrainConfig(resume=str(default_lr), lr=0.001)).config.lr is None  # the value it used: no conflict
    auto = tmp_path / "auto-lr"  # --lr auto: config.yaml keeps the number the range test chose
    chosen = Trainer(small_config(blobs_npz, auto, epochs=1, report=False, lr="auto")).config.lr
    assert isinstance(chosen, float) and load_yaml(auto / "config.yaml")["lr"] == chosen
    budgeted = tmp_path / "budgeted"
    Trainer(small_config(blobs_npz, budgeted, epochs=2, time_budget=5.0, report=False)).fit()
    with pytest.raises(ConfigError, match="trained with time_budget 5 min, which plans its epochs"):
        Trainer(TrainConfig(resume=str(budgeted), epochs=4))


def test_cli_resume_with_a_changed_option_is_a_one_line_error(blobs_npz, tmp_path, single_thread, capsys):
    from convcoach.cli import main

    run = tmp_path / "run"
    Trainer(small_config(blobs_npz, run, epochs=1, report=False)).fit()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--lr", "0.3", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "these differ and cannot change mid-run: lr 0.3 (saved: 0.05)." in err


class _Signal(Callback):
    """Sends `signum` to this process at the end of iteration `step` (as a scheduler or Ctrl-C would), `times` times."""

    def __init__(self, step: int, signum: int, times: int = 1) -> None:
        self.step, self.signum, self.times = step, signum, times

    def on_batch_end(self, trainer, loss):
        if trainer.state.step == self.step:
            for _ in range(self.times):
                os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize(("signum", "step", "epoch_end"), [(signal.SIGTERM, 6, False), (signal.SIGINT, 8, True)])
def test_a_signal_saves_where_the_loop_stands_and_the_resume_loses_nothing(
    blobs_npz, tmp_path, single_thread, caplog, signum, step, epoch_end
):
    # no checkpoint_every: without the signal, last.pt would hold only the end of the previous epoch
    reference = Trainer(_config(blobs_npz, tmp_path / "reference", checkpoint_every=0)).fit()
    # what was installed before (a shell's background job starts with SIGINT ignored): put back after the run
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with caplog.at_level("WARNING", logger="convcoach"), pytest.raises(Interrupted) as stopped:
        Trainer(_config(blobs_npz, tmp_path / "killed", checkpoint_every=0), callbacks=[_Signal(step, signum)]).fit()
    assert stopped.value.signum == signum
    saved = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert saved["state"]["step"] == step and saved["loader_state"]["position"] == (0 if epoch_end else step % 4)
    assert (
        f"stopped at iteration {step} (epoch 2), saved in last.pt; continue with: convcoach train --resume"
        in caplog.text
    )
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    resumed = Trainer(TrainConfig(resume=str(tmp_path / "killed"), quiet=True)).fit()
    ours, theirs = load_checkpoint(tmp_path / "killed" / "last.pt"), load_checkpoint(tmp_path / "reference" / "last.pt")
    assert all(torch.equal(ours["model_state"][k], theirs["model_state"][k]) for k in theirs["model_state"])
    assert _rows(tmp_path / "killed") == _rows(tmp_path / "reference")
    assert resumed["test_accuracy"] == reference["test_accuracy"]


def test_a_second_signal_stops_at_once(blobs_npz, tmp_path, single_thread):
    with pytest.raises(KeyboardInterrupt) as stopped:
        Trainer(
            _config(blobs_npz, tmp_path / "run", checkpoint_every=0), callbacks=[_Signal(6, signal.SIGINT, times=2)]
        ).fit()
    assert not isinstance(stopped.value, Interrupted)  # no save: last.pt is still the end of epoch 1
    assert load_checkpoint(tmp_path / "run" / "last.pt")["state"]["step"] == 4


@pytest.mark.slow
def test_cli_sigterm_saves_and_exits_143_and_resumes(blobs_npz, tmp_path):
    args = [
        "--data",
        f"npz:{blobs_npz}",
        "--model",
        "cnn",
        "--depth",
        "2",
        "--width",
        "8",
        "--epochs",
        "400",
        "--batch-size",
        "16",
        "--no-report",
        "--no-monitors",
        "--seed",
        "1",
        "--schedule",
        "constant",
        "--lr",
        "0.05",
    ]
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "convcoach", "train", *args, "--out", str(run)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_epochs(run, 2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    saved = load_checkpoint(run / "last.pt")["state"]
    assert (
        f"stopped at iteration {saved['step']} " in err
        and "saved in last.pt; continue with: convcoach train --resume" in err
    )
    assert saved["epoch"] < 400
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "convcoach",
            "train",
            "--resume",
            str(run),
            "--epochs",
            str(saved["epoch"] + 2),
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == saved["epoch"] + 2


def test_resume_keeps_the_precision_auto_chose_at_the_start(blobs_npz, tmp_path, single_thread, monkeypatch):
    loop = sys.modules["convcoach.train.precision_choice"]

    run = tmp_path / "run"
    monkeypatch.setattr(loop, "resolve_precision", lambda name, device, time_step: ("bf16", "timed faster"))
    with pytest.raises(KeyboardInterrupt):
        Trainer(small_config(blobs_npz, run, epochs=2, report=False, precision="auto"), callbacks=[_KillAt(5)]).fit()
    assert load_checkpoint(run / "last.pt")["precision"] == {"device": "cpu", "chosen": "bf16"}
    # the resumed run's own timing would say fp32 (a noisy host): it keeps bf16 all the same
    monkeypatch.setattr(loop, "resolve_precision", lambda name, device, time_step: ("fp32", "timed slower"))
    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: True)
    resumed = Trainer(small_config(blobs_npz, run, epochs=2, report=False, precision="auto", resume=str(run)))
    assert (resumed.precision, resumed.precision_reason) == ("bf16", "kept from the run's start (bf16 on cpu)")
    # on a CPU without native bf16 the resume is re-decided rather than emulating bf16
    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: False)
    assert (
        Trainer(small_config(blobs_npz, run, epochs=2, report=False, precision="auto", resume=str(run))).precision
        == "fp32"
    )
