"""Weight averaging (`ema`): the update rule, swapping the average in and out, checkpoints, resume."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from conftest import interrupt_after_epoch, small_config

from convcoach import ConfigError, TrainConfig, Trainer
from convcoach.train.averaging import WeightAverage, ema_decay
from convcoach.train.callbacks import Callback
from convcoach.train.checkpoint import load_checkpoint


def test_decay_warms_up_then_holds_the_configured_value():
    assert ema_decay(0.998, 1) == pytest.approx(2 / 11)
    assert ema_decay(0.998, 10) == pytest.approx(11 / 20)
    assert ema_decay(0.998, 100_000) == 0.998


def test_update_moves_the_shadow_by_one_minus_decay_and_copies_integer_buffers():
    model = nn.Sequential(nn.Linear(2, 1, bias=False), nn.BatchNorm1d(1))
    nn.init.constant_(model[0].weight, 1.0)
    average = WeightAverage(0.5)
    average.update(model)  # first update: d = 2/11, shadow starts at the current weights
    assert torch.equal(average.shadow["0.weight"], torch.ones(1, 2))
    with torch.no_grad():
        model[0].weight.fill_(3.0)
    model[1].num_batches_tracked.fill_(7)
    average.update(model)  # d = min(0.5, 3/12) = 0.25: 0.25 * 1 + 0.75 * 3
    assert average.shadow["0.weight"].tolist() == [[2.5, 2.5]]
    assert average.shadow["1.num_batches_tracked"].item() == 7
    average.updates = 1000  # past the warm-up: d = 0.5
    average.update(model)
    assert average.shadow["0.weight"].tolist() == [[2.75, 2.75]]


def test_applied_swaps_the_average_in_and_restores_the_weights():
    model = nn.Linear(3, 1)
    average = WeightAverage(0.9)
    average.update(model)
    own = model.weight.detach().clone()
    with torch.no_grad():
        average.shadow["weight"].fill_(0.25)
    with average.applied(model):
        assert torch.equal(model.weight, torch.full((1, 3), 0.25))
    assert torch.equal(model.weight, own)


def test_a_restored_average_moves_to_the_models_device():
    # checkpoints load onto the CPU; on a GPU run the shadow must follow the weights ("meta" stands in)
    model = nn.Linear(2, 2).to("meta")
    average = WeightAverage(0.9)
    average.load_state_dict({"updates": 3, "shadow": {"weight": torch.ones(2, 2), "bias": torch.zeros(2)}})
    average.on_train_start(type("T", (), {"model": model})())
    assert {v.device.type for v in average.shadow.values()} == {"meta"} and average.updates == 3


def test_ema_must_be_a_decay_below_one(blobs_npz, tmp_path):
    with pytest.raises(ConfigError, match=r"ema must be 0 \(off\) or a decay in \(0, 1\) such as 0.998, got 1.5"):
        small_config(blobs_npz, tmp_path, ema=1.5).validate()


class _Snapshot(Callback):
    """Records the EMA weights and the model's own weights after each epoch's checkpoint."""

    order = 99

    def __init__(self) -> None:
        self.shadows, self.own = [], []

    def on_epoch_end(self, trainer, metrics):
        average = trainer._averager()
        self.shadows.append({k: v.clone() for k, v in average.shadow.items()})
        self.own.append({k: v.clone() for k, v in trainer.model.state_dict().items()})


def test_best_checkpoint_holds_the_average_and_last_the_raw_weights(blobs_npz, tmp_path):
    snapshot = _Snapshot()
    trainer = Trainer(small_config(blobs_npz, tmp_path / "run", epochs=4, ema=0.9, report=False), callbacks=[snapshot])
    summary = trainer.fit()
    assert summary["ema"] == 0.9 and summary["test_accuracy"] >= 0.9
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    epoch = summary["best_epoch"]
    for key, value in best["model_state"].items():
        assert torch.equal(value, snapshot.shadows[epoch - 1][key]), key
    for key, value in last["model_state"].items():
        assert torch.equal(value, snapshot.own[-1][key]), key
    first = next(iter(snapshot.own[-1]))
    assert not torch.equal(snapshot.shadows[-1][first], snapshot.own[-1][first])
    assert last["callbacks"]["WeightAverage"]["updates"] == 4 * 4  # one update per step, 4 steps per epoch


def test_validation_scores_the_averaged_weights(blobs_npz, tmp_path):
    trainer = Trainer(small_config(blobs_npz, tmp_path / "run", epochs=3, ema=0.9, report=False))
    trainer.fit(test=False)
    with trainer.averaged():
        expected = trainer.evaluate(trainer.val_loader).accuracy
    assert trainer.state.history[-1]["val_acc"] == pytest.approx(expected)


def test_an_interrupted_run_resumes_to_the_same_average(blobs_npz, tmp_path):
    reference = Trainer(small_config(blobs_npz, tmp_path / "ref", epochs=4, ema=0.9, report=False))
    reference.fit()
    config = small_config(blobs_npz, tmp_path / "run", epochs=4, ema=0.9, report=False)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, callbacks=[interrupt_after_epoch(2)]).fit()
    resumed = Trainer(TrainConfig(resume=str(tmp_path / "run"), quiet=True))
    resumed.fit()
    ours, theirs = resumed._averager().shadow, reference._averager().shadow
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), key
