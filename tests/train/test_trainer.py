"""The Trainer end to end on tiny synthetic data: learning, checkpoints, guards, resume."""

from __future__ import annotations

import json
import re

import pytest
import torch
from conftest import small_config

from convcoach import Trainer
from convcoach.train.callbacks import Callback


def test_small_cnn_learns_blobs_to_high_accuracy(blobs_npz, tmp_path):
    summary = Trainer(small_config(blobs_npz, tmp_path / "run", epochs=8)).fit()
    assert summary["status"] == "completed"
    assert summary["test_accuracy"] >= 0.9
    assert summary["data"]["train"] + summary["data"]["val"] == 144  # 80% of 180 after the test split
    assert summary["data"]["val"] == 15  # 10% stratified validation split, 5 per class
    # the split-by-class figures the coach reads: counts, the best snapshot's validation accuracy per
    # class (one fp32 pass), and the class each class's wrong test images went to
    assert summary["val_class_counts"] == [5, 5, 5] and summary["test_class_counts"] == [12, 12, 12]
    val = summary["val_per_class_accuracy"]
    assert set(val) == set(summary["data"]["classes"]) and all(acc * 5 == round(acc * 5) for acc in val.values())
    wrong = sum(round((1 - acc) * 12) for acc in summary["test_per_class_accuracy"].values())
    taken = summary["test_taken_for"]
    assert all(share * 12 == pytest.approx(round(share * 12)) for _, share in taken.values())
    assert sum(round(share * 12) for _, share in taken.values()) <= wrong and (wrong == 0) == (not taken)
    assert summary["data"]["pixel_shift"]["shifted"] == 0  # one source, split at random


def test_run_dir_holds_config_env_metrics_and_checkpoints(blobs_npz, tmp_path):
    Trainer(small_config(blobs_npz, tmp_path / "run")).fit()
    run = tmp_path / "run"
    for name in ("config.yaml", "env.json", "metrics.jsonl", "best.pt", "last.pt", "summary.json"):
        assert (run / name).is_file(), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    iters = [r for r in rows if r["kind"] == "iter"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert len(iters) == epochs[-1]["step"] == 3 * 4  # 129 training samples, batch 32, ragged batch dropped
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr"} <= set(epochs[0])
    env = json.loads((run / "env.json").read_text())
    assert env["seed"] == 0 and env["precision"] in ("fp32", "bf16")


def test_without_validation_split_best_is_chosen_by_training_accuracy_and_not_called_val(blobs_npz, tmp_path):
    summary = Trainer(small_config(blobs_npz, tmp_path / "run", epochs=4, val_fraction=0.0)).fit()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_acc = [r["train_acc"] for r in rows if r["kind"] == "epoch"]
    assert summary["data"]["val"] == 0 and summary["data"]["train"] == 144
    assert summary["best_val_acc"] is None and summary["best_selected_by"] == "train_acc"
    assert summary["best_epoch"] == 1 + train_acc.index(max(train_acc))


def test_checkpoint_loads_with_weights_only(blobs_npz, tmp_path):
    Trainer(small_config(blobs_npz, tmp_path / "run")).fit()
    payload = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert payload["classes"] == ["0", "1", "2"]
    assert payload["model"]["name"] == "cnn"
    assert len(payload["normalizer"]["mean"]) == 1


def test_explosion_guard_stops_a_run_with_huge_learning_rate(blobs_npz, tmp_path):
    summary = Trainer(small_config(blobs_npz, tmp_path / "run", lr=1e6, norm="none", optimizer="sgd")).fit()
    assert summary["status"] == "diverged" and summary["stop_reason"] == "diverged"
    match = re.fullmatch(
        r"loss exploded at iteration (\d+) \((?:NaN/inf|[\d.e+-]+ > 3 x initial [\d.e+-]+)\); "
        r"the learning rate \(1e\+06\) is the likely cause: try 3-10x lower",
        summary["stop_message"],
    )
    assert match, summary["stop_message"]
    assert int(match.group(1)) == summary["steps"] <= 4  # the iteration it stopped at, within the first epoch


def test_early_stopping_stops_when_validation_stalls(blobs_npz, tmp_path):
    # lr 1e-7 cannot move the validation accuracy: patience 2 ends the run after 3 epochs
    summary = Trainer(small_config(blobs_npz, tmp_path / "run", lr=1e-7, epochs=20, patience=2)).fit()
    assert summary["stop_reason"] == "early_stopping"
    assert summary["epochs_run"] == 3


def test_user_module_trains_and_callbacks_see_every_event(blobs_npz, tmp_path):
    events = []

    class Recorder(Callback):
        def on_train_start(self, trainer):
            events.append("train_start")

        def on_epoch_end(self, trainer, metrics):
            events.append(f"epoch{metrics['epoch']}")

        def on_train_end(self, trainer):
            events.append("train_end")

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(144, 3))
    summary = Trainer(small_config(blobs_npz, tmp_path / "run", epochs=2), model=model, callbacks=[Recorder()]).fit()
    assert events == ["train_start", "epoch1", "epoch2", "train_end"]
    assert summary["model"]["name"] == "custom"


@pytest.mark.parametrize("disk_room", [True, False])  # memory-mapped from the decoded cache, or files streamed
def test_image_folder_larger_than_memory_limit_trains_from_disk(tmp_path, monkeypatch, disk_room):
    import shutil

    from conftest import make_blobs
    from PIL import Image

    monkeypatch.setenv("CONVCOACH_CACHE", str(tmp_path / "cache"))
    if not disk_room:
        monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10, 10, 0))

    x, y = make_blobs(n_per_class=20)
    for index, (image, label) in enumerate(zip(x, y)):
        folder = tmp_path / "imgs" / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index}.png")
    config = small_config(tmp_path / "unused", tmp_path / "run", memory_limit_gb=1e-6, epochs=20, batch_size=16)
    config.data = str(tmp_path / "imgs")
    trainer = Trainer(config)
    assert trainer.data.train.mapped == disk_room and trainer.data.streaming != disk_room
    trainer.train_loader.num_workers = 0  # worker processes are exercised by the CLI; keep the test quick
    summary = trainer.fit()
    assert summary["data"]["test"] == 12 and summary["test_accuracy"] >= 0.75


def test_final_test_pass_with_flip_tta_averages_image_and_mirror(blobs_npz, tmp_path):
    from convcoach.infer import evaluate_trained, load_trained

    summary = Trainer(small_config(blobs_npz, tmp_path / "run", epochs=4, tta="flip", report=False)).fit()
    assert summary["tta"] == "flip"
    trained = load_trained(tmp_path / "run" / "best.pt")
    # the same numbers as `convcoach eval --tta flip` on the saved best snapshot
    assert summary["test_accuracy"] == pytest.approx(evaluate_trained(trained, tta="flip").accuracy)
    assert summary["test_accuracy_without_tta"] == pytest.approx(evaluate_trained(trained).accuracy)


def test_tta_auto_uses_flips_only_when_training_did():
    from convcoach import TrainConfig

    assert TrainConfig().resolved_tta() == "flip"  # the default recipe trains with hflip
    assert TrainConfig(augment=["translate:2"]).resolved_tta() is None  # digits, blobs: a flip changes the class
    assert TrainConfig(tta="none").resolved_tta() is None
    assert TrainConfig(tta="10crop").resolved_tta() == "10crop"
