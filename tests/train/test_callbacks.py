"""The training callbacks on their own, with a stand-in trainer: the explosion guard and early stopping."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from conftest import small_config

from convcoach import Trainer
from convcoach.train.callbacks import EarlyStopping, ExplosionGuard

pytestmark = pytest.mark.usefixtures("single_thread")


class _FakeTrainer:
    """What the callbacks read and call: the optimizer's LR, the step counter and stop()."""

    def __init__(self, lr: float = 0.5) -> None:
        self.optimizer = SimpleNamespace(param_groups=[{"lr": lr}])
        self.state = SimpleNamespace(step=0)
        self.stops: list[tuple[str, str]] = []

    def stop(self, reason: str, message: str) -> None:
        self.stops.append((reason, message))


def _feed_losses(guard: ExplosionGuard, trainer: _FakeTrainer, losses: list[float]) -> None:
    for loss in losses:
        trainer.state.step += 1
        guard.on_batch_end(trainer, loss)


def test_explosion_guard_stops_above_factor_times_the_first_loss():
    trainer = _FakeTrainer(lr=0.5)
    guard = ExplosionGuard(3.0)
    _feed_losses(guard, trainer, [2.0, 5.0, 6.0])  # 6.0 = 3 x 2.0 is not above it
    assert trainer.stops == [] and guard.initial == 2.0
    _feed_losses(guard, trainer, [6.01])
    assert trainer.stops == [
        (
            "diverged",
            "loss exploded at iteration 4 (6.01 > 3 x initial 2); "
            "the learning rate (0.5) is the likely cause: try 3-10x lower",
        )
    ]


def test_explosion_guard_stops_on_nan_and_skips_a_non_finite_first_loss():
    trainer = _FakeTrainer(lr=1e-3)
    guard = ExplosionGuard(3.0)
    _feed_losses(guard, trainer, [float("inf")])
    assert guard.initial is None  # an infinite first loss is no reference
    assert trainer.stops == [
        (
            "diverged",
            "loss exploded at iteration 1 (NaN/inf); the learning rate (0.001) is the likely cause: try 3-10x lower",
        )
    ]


def _early_stopping_run(
    stopper: EarlyStopping, values: list[float], monitor: str = "val_acc"
) -> tuple[list[float | None], int | None]:
    """Feed one validation value per epoch; the smoothed values and the epoch at which it stopped."""
    trainer = _FakeTrainer()
    smoothed: list[float | None] = []
    for epoch, value in enumerate(values, start=1):
        stopper.on_validation_end(trainer, {monitor: value})
        smoothed.append(stopper.smoothed)
        if trainer.stops:
            assert trainer.stops == [("early_stopping", f"{monitor} has not improved for {stopper.patience} epochs")]
            return smoothed, epoch
    return smoothed, None


def test_early_stopping_ignores_gains_below_min_delta():
    # 0.53 and 0.54 beat 0.50 by less than 0.05: two epochs without improvement
    assert _early_stopping_run(EarlyStopping(patience=2, min_delta=0.05), [0.50, 0.53, 0.54])[1] == 3
    assert _early_stopping_run(EarlyStopping(patience=2, min_delta=0.0), [0.50, 0.53, 0.54])[1] is None


def test_early_stopping_min_delta_compares_with_the_best_not_the_last_value():
    # each step gains 0.03 < 0.05 over the one before, but 0.56 beats the best (0.50) by 0.06
    stopper = EarlyStopping(patience=3, min_delta=0.05)
    assert _early_stopping_run(stopper, [0.50, 0.53, 0.56, 0.58, 0.60])[1] is None
    assert stopper.best == pytest.approx(0.56) and stopper.bad_epochs == 2


def test_early_stopping_gain_of_exactly_min_delta_is_not_better():
    stopper = EarlyStopping(patience=5, min_delta=0.25)
    _early_stopping_run(stopper, [0.5, 0.75])
    assert stopper.best == 0.5 and stopper.bad_epochs == 1


def test_early_stopping_smooths_with_an_exponential_moving_average():
    # s1 = 0.5; s2 = 0.5 * 0.5 + 0.5 * 1.0 = 0.75; s3 = 0.5 * 0.75 + 0.5 * 0.5 = 0.625 < 0.75: one bad epoch
    stopper = EarlyStopping(patience=1, smoothing=0.5)
    smoothed, stopped = _early_stopping_run(stopper, [0.5, 1.0, 0.5])
    assert smoothed == pytest.approx([0.5, 0.75, 0.625])
    assert stopped == 3 and stopper.best == pytest.approx(0.75)


def test_early_stopping_smoothing_weights_the_history_by_the_factor():
    # 0.9 * 0.5 + 0.1 * 1.0 = 0.55, then 0.9 * 0.55 + 0.1 * 0.0 = 0.495
    smoothed, _ = _early_stopping_run(EarlyStopping(patience=5, smoothing=0.9), [0.5, 1.0, 0.0])
    assert smoothed == pytest.approx([0.5, 0.55, 0.495])


def test_early_stopping_on_a_loss_wants_it_lower():
    stopper = EarlyStopping(patience=2, min_delta=0.1, monitor="val_loss")
    # 1.0 -> 0.8 improves by 0.2; 0.75 and 0.85 do not beat 0.8 by 0.1
    assert _early_stopping_run(stopper, [1.0, 0.8, 0.75, 0.85], monitor="val_loss")[1] == 4
    assert stopper.best == pytest.approx(-0.8)


def test_early_stopping_state_round_trips():
    stopper = EarlyStopping(patience=3, smoothing=0.5)
    _early_stopping_run(stopper, [0.5, 1.0, 0.5])
    restored = EarlyStopping(patience=3, smoothing=0.5)
    restored.load_state_dict(stopper.state_dict())
    assert restored.state_dict() == {"smoothed": 0.625, "best": 0.75, "bad_epochs": 1}


def test_patience_min_delta_and_smoothing_reach_the_callback(blobs_npz, tmp_path):
    trainer = Trainer(small_config(blobs_npz, tmp_path / "run", epochs=1, patience=4, min_delta=0.02, smoothing=0.3))
    stoppers = [c for c in trainer.callbacks if isinstance(c, EarlyStopping)]
    assert [(s.patience, s.min_delta, s.smoothing, s.monitor) for s in stoppers] == [(4, 0.02, 0.3, "val_acc")]
