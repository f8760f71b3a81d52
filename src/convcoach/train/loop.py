"""The Trainer: a short mini-batch loop with events; everything else is a callback."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..atomic import remove_stale_temps
from ..config import TrainConfig, from_dict, save_yaml
from ..data import BatchLoader, DataBundle, Normalizer, parse_augment
from ..errors import ConfigError, TrainingDiverged
from ..evaluate.passes import Evaluation, evaluate
from ..files import loads_json, write_json
from ..precision import autocast, resolve_device
from ..run_dirs import RunDirLock, claim_run_dir, lock_run_dir
from ..threads import choose_threads
from .accumulate import WHOLE_BATCH, Accumulation, MicroBatch
from .averaging import WeightAverage
from .callbacks import Callback
from .checkpoint import save_checkpoint
from .distributed import (
    all_reduce_sum,
    barrier,
    device_for,
    init_distributed,
    no_sync,
    shutdown,
    unwrap,
    wrap_model,
)
from .extensions import default_callbacks
from .optim import create_optimizer
from .precision_choice import choose_precision
from .regularizers import parse_reg, penalized_parameters
from .resume import resumed_run
from .sam import Perturbation, frozen_running_stats
from .schedules import create_scheduler, multiplier
from .setup import build_run, config_lr, optim_settings, warn_unused
from .signals import Interrupted, StopRequest, explain_interrupt
from .state import TrainState, checkpoint_payload, restore
from .summary import run_summary, test_best, write_env

log = logging.getLogger("convcoach")


class Trainer:
    """Builds data, model, optimizer and callbacks from a TrainConfig and runs the loop.

    `model` (any nn.Module) replaces the registry model; `data` skips loading; `normalizer` replaces
    the one fit on the training split; `param_groups(base_lr)` gives the optimizer's groups
    (discriminative fine-tuning, transfer/)."""

    def __init__(
        self,
        config: TrainConfig,
        model: nn.Module | None = None,
        callbacks: list[Callback] | None = None,
        data: DataBundle | None = None,
        normalizer: Normalizer | None = None,
        param_groups: Callable[[float], list[dict]] | None = None,
    ) -> None:
        self.created_at = time.perf_counter()  # the time budget counts from here
        resume_state, new_length = None, False
        if config.resume:  # resume_state is None for a run killed before its first checkpoint: it starts over
            config, new_length, resume_state = resumed_run(config)
        self.config = config.validate()
        self.threads_before = torch.get_num_threads()
        threads, self.threads_reason = choose_threads(config.threads, self.threads_before)
        if resume_state is not None and config.threads is None and (saved := _saved_threads(config.resume)):
            threads = saved  # other threads split the reductions differently: the resume would not be bit-identical
            self.threads_reason = f"{saved} thread(s), as the run it resumes (its results stay bit-identical)"
        torch.set_num_threads(threads)
        self.dist = init_distributed(config.device)
        if self.dist.is_main:
            warn_unused(config)
        self.run_lock: RunDirLock | None = None  # rank 0's ownership of run_dir (run_dirs.py)
        self.run_dir = self._agree_run_dir(config)
        if config.overwrite:  # done: config.yaml must not make a resume or a rerun of it overwrite again
            config = self.config = dataclasses.replace(config, overwrite=False)
        self.resumed = resume_state is not None
        if self.dist.is_main:
            remove_stale_temps(self.run_dir)  # what writes killed mid-way left (SIGKILL skips all clean-up)
        self.device = device_for(self.dist, resolve_device(config.device))
        try:
            parts = build_run(config, self.device, model, data, normalizer)
        except ConfigError:
            if self.run_lock is not None:
                self.run_lock.abandon()  # a run that never started leaves no empty directory behind
            raise
        self.lr_choice = parts.lr_choice
        if parts.lr_choice is not None and parts.lr_choice.lr is not None:  # --lr auto: keep the number it chose
            config = self.config = dataclasses.replace(config, lr=config_lr(config, parts.lr))
        self.data, self.normalizer, self.spec, self.model = parts.data, parts.normalizer, parts.spec, parts.model
        self.init_used, self.loss_fn, self.eval_loss_fn = parts.init_used, parts.loss_fn, parts.eval_loss_fn
        self.class_weights = parts.class_weights  # env.json records them
        self.train_loader = self.loader(self.data.train, shuffle=True, augment=True)
        self.val_loader = self.loader(self.data.val) if self.data.val is not None else None
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # timed on the bare net, before DDP registers its gradient hooks on the parameters
        self.precision, self.precision_reason = choose_precision(self, resume_state)
        self.model = wrap_model(self.model, self.dist, self.device, config.sync_bn)
        if config.compile:
            self.model = torch.compile(self.model)
        self.penalty = parse_reg(config.reg)
        self.penalty_params = penalized_parameters(self.model, config.reg_all) if self.penalty else []
        self.base_lr = parts.lr
        groups = param_groups(self.base_lr) if param_groups else None
        self.optimizer = create_optimizer(
            config.optimizer, self.model, optim_settings(config, self.base_lr), groups=groups
        )
        # --accumulate: the loader serves micro-batches; the schedule counts optimizer steps
        self.accumulation = Accumulation(config.accumulate, len(self.train_loader))
        self.steps_per_epoch = self.accumulation.steps_per_epoch
        self.total_steps = config.epochs * self.steps_per_epoch
        self.scheduler = create_scheduler(
            self.optimizer, config.schedule, self.total_steps, self.steps_per_epoch, config.warmup
        )
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.sam = Perturbation(params, config.sam) if config.sam else None
        self.state = TrainState()
        self.saved_step: int | None = None  # the iteration last.pt holds
        self.test_result: Evaluation | None = None  # the best snapshot on the test split, set by finish()
        self.callbacks = sorted(
            default_callbacks(config, self.run_dir, self.dist.is_main) + list(callbacks or []), key=lambda c: c.order
        )
        if resume_state is not None:
            restore(self, resume_state)
            if new_length:  # train longer (or shorter) than planned: the schedule follows the new length
                self.replan(config.epochs)
                if self.dist.is_main:
                    save_yaml(dataclasses.replace(config, resume=None), self.run_dir / "config.yaml")
        elif self.dist.is_main and (new_length or not config.resume):
            save_yaml(dataclasses.replace(config, resume=None), self.run_dir / "config.yaml")
        if self.dist.is_main:
            write_env(self)

    # ----- the loop -----
    def fit(self, test: bool = True) -> dict[str, Any]:
        """Train to the configured epochs (or until a callback stops the run), then test the best snapshot.

        `test=False` (tuning trials) never reads the test split: the summary's test fields are None."""
        self.emit("on_train_start")
        start = time.perf_counter() - self.state.elapsed
        try:
            with StopRequest() as request:
                self._epochs(start, request)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                explain_interrupt(self)
            self.release_run_dir()  # stopped or failed: a --resume in another process may take the directory now
            raise
        self.state.elapsed = time.perf_counter() - start
        self.emit("on_train_end")
        return self.finish(test)

    def _epochs(self, start: float, request: StopRequest) -> None:
        """The epochs left to run; `start` is the clock's zero (earlier sessions' time subtracted).
        On SIGINT/SIGTERM (`request`), last.pt is saved where the loop stands, then Interrupted is raised."""
        while self.state.epoch < self.config.epochs and self.state.stop_reason is None:
            if signum := request.agreed(
                self.dist, self.device
            ):  # arrived during validation: last.pt is this epoch's end
                raise Interrupted(signum)
            self.emit("on_epoch_start")
            self.model.train()
            loss_sum, correct, seen = self._epoch_sums()
            group_loss = 0.0  # the micro-batches' losses since the last optimizer step (--accumulate)
            for x, y in self.train_loader:
                x, y = self.transform_batch(x, y)
                micro = self.accumulation.at(self.train_loader.position)
                loss, logits = self.train_step(x, y, micro)
                loss_sum += loss * len(x)
                seen += len(x)
                correct += (logits.argmax(dim=1) == (y if y.dim() == 1 else y.argmax(dim=1))).sum()
                group_loss += loss
                if not micro.last:
                    continue  # no callback, checkpoint or signal between a group's micro-batches
                self.state.step += 1
                self.emit("on_batch_end", self._global_mean(group_loss / micro.group_size))
                group_loss = 0.0
                if self.state.stop_reason == "diverged":
                    break
                mid_epoch = self.train_loader.position < len(self.train_loader)
                signum = request.agreed(self.dist, self.device)
                if mid_epoch and (
                    signum or (self.config.checkpoint_every and self.state.step % self.config.checkpoint_every == 0)
                ):
                    self._checkpoint_mid_epoch([loss_sum, correct.item(), seen], start)
                    if signum:
                        raise Interrupted(signum)
            if self.state.stop_reason == "diverged":
                return
            self.state.epoch += 1
            totals = all_reduce_sum(
                torch.tensor([loss_sum, correct.item(), seen], dtype=torch.float64, device=self.device), self.dist
            ).tolist()
            metrics = {
                "epoch": self.state.epoch,
                "step": self.state.step,
                "train_loss": totals[0] / max(totals[2], 1),
                "train_acc": totals[1] / max(totals[2], 1),
            }
            if self.val_loader is not None:
                metrics.update(self._validate())
            metrics.update(lr=self.optimizer.param_groups[0]["lr"], time=time.perf_counter() - start)
            self.state.elapsed = metrics["time"]
            self.state.history.append(metrics)
            self.emit("on_validation_end", metrics)
            self.emit("on_epoch_end", metrics)
            if signum := request.agreed(self.dist, self.device):  # the epoch-end checkpoint is written
                raise Interrupted(signum)

    def train_step(
        self, x: torch.Tensor, y: torch.Tensor, micro: MicroBatch = WHOLE_BATCH
    ) -> tuple[float, torch.Tensor]:
        """Forward and backward of one (micro-)batch; the optimizer steps after its group's last (`micro`).
        Returns this process's loss on the batch and the logits."""
        if self.sam is not None:
            return self._sam_step(x, y)
        if micro.first:
            self.optimizer.zero_grad(set_to_none=True)
        with no_sync(self.model, not micro.last):  # DDP: micro-batches that do not step skip the all-reduce
            loss, logits = self._loss(x, y)
            # the group's gradients sum to the mean over its micro-batches (equal-sized: over its images)
            self._backward(loss / micro.group_size if micro.group_size > 1 else loss)
        if micro.last:
            self._optimizer_step()
        return loss.item(), logits.detach()

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast(self.precision, self.device):
            logits = self.model(x)
            loss = self.loss_fn(logits, y)
        if self.penalty is not None:
            loss = loss + self.penalty(self.penalty_params)
        return loss, logits

    def _backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()  # fp16: the scaled loss

    def _sam_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        """--sam: the gradient at w (kept local under DDP) moves the weights up the loss; the gradient
        there steps the optimizer from w (train/sam.py). Returns the loss and logits at w."""
        assert self.sam is not None
        self.optimizer.zero_grad(set_to_none=True)
        with no_sync(self.model, True):
            loss, logits = self._loss(x, y)
            self._backward(loss)
        self.sam.ascend(self.scaler.get_scale() if self.scaler is not None else 1.0)
        self.optimizer.zero_grad(set_to_none=True)
        with frozen_running_stats(self.model):
            self._backward(self._loss(x, y)[0])
        self.sam.descend()
        self._optimizer_step()
        return loss.item(), logits.detach()

    def _optimizer_step(self) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # the hook sees true gradients (step would unscale here anyway)
            self.emit("on_before_optimizer_step")
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.emit("on_before_optimizer_step")
            self.optimizer.step()
        self.scheduler.step()

    def _global_mean(self, loss: float) -> float:
        """This process's step loss averaged over the processes: the global batch's, the same on every rank."""
        if not self.dist.enabled:
            return loss
        total = all_reduce_sum(torch.tensor(loss, dtype=torch.float64, device=self.device), self.dist)
        return (total / self.dist.world_size).item()

    def _epoch_sums(self) -> tuple[float, torch.Tensor, int]:
        """The running loss sum, correct count and sample count an epoch starts from: zeros, or on
        rank 0 the sums a mid-epoch checkpoint saved (all ranks' together)."""
        saved, self.state.partial = self.state.partial, []
        if not saved or not self.dist.is_main:
            return 0.0, torch.zeros((), device=self.device), 0
        return saved[0], torch.tensor(saved[1], device=self.device), int(saved[2])

    def _checkpoint_mid_epoch(self, sums: list[float], start: float) -> None:
        """`checkpoint_every`: last.pt inside an epoch, so a kill loses at most that many iterations."""
        if self.dist.enabled:  # a collective: every rank reaches the same step
            sums = all_reduce_sum(torch.tensor(sums, dtype=torch.float64, device=self.device), self.dist).tolist()
        self.state.partial, self.state.elapsed = sums, time.perf_counter() - start
        self.emit("on_checkpoint")
        self.state.partial = []

    def replan(self, epochs: int) -> None:
        """Change the run's length mid-run: the LR schedule is recomputed for the new total steps
        (`time_budget`); the current step keeps its place, so the next LR follows the new curve."""
        self.config.epochs = epochs
        self.total_steps = epochs * self.steps_per_epoch
        lam = multiplier(self.config.schedule, self.total_steps, self.steps_per_epoch, self.config.warmup)
        self.scheduler.lr_lambdas = [lam] * len(self.scheduler.lr_lambdas)
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * lam(self.scheduler.last_epoch)

    def transform_batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Callbacks with `on_batch_start` may replace the batch (mixup, cutmix)."""
        for callback in self.callbacks:
            hook = getattr(callback, "on_batch_start", None)
            if hook is not None:
                x, y = hook(self, x, y)
        return x, y

    def emit(self, event: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)

    def stop(self, reason: str, message: str) -> None:
        if self.state.stop_reason is None:
            self.state.stop_reason, self.state.stop_message = reason, message
            log.warning(message)

    def evaluate(self, loader: BatchLoader, precision: str | None = None) -> Evaluation:
        """One pass over `loader`, in the training precision unless told otherwise."""
        return evaluate(
            unwrap(self.model),
            loader,
            self.eval_loss_fn,
            self.data.num_classes,
            precision or self.precision,
            self.device,
        )

    def averaged(self) -> contextlib.AbstractContextManager:
        """A block in which the model holds the EMA weights (`ema`), or a no-op without them."""
        averager = self._averager()
        return averager.applied(unwrap(self.model)) if averager else contextlib.nullcontext()

    def inference_state(self) -> dict[str, torch.Tensor]:
        """The weights that are validated and tested: the EMA ones with `ema`, else the model's own."""
        averager = self._averager()
        return dict(averager.shadow) if averager and averager.shadow else unwrap(self.model).state_dict()

    def _averager(self) -> WeightAverage | None:
        return next((c for c in self.callbacks if isinstance(c, WeightAverage)), None)

    def _validate(self) -> dict[str, float]:
        """Validation metrics; under DDP rank 0's are broadcast so every rank takes the same decisions."""
        with self.averaged():
            val = self.evaluate(self.val_loader)
        result = [{"val_loss": val.loss, "val_acc": val.accuracy}]
        if self.dist.enabled:
            torch.distributed.broadcast_object_list(result, src=0)
        return result[0]

    # ----- the end of a run -----
    def finish(self, test: bool = True) -> dict[str, Any]:
        """Test the best snapshot once (unless `test` is False), write summary.json, then the
        `on_run_end` callbacks (the report)."""
        barrier(self.dist)  # rank 0 has written best.pt
        if not self.dist.is_main:
            # the group is torn down by every rank at once, after rank 0's test pass and summary: a rank
            # that destroys it while another still holds its connections can abort (gloo's teardown)
            barrier(self.dist)
            shutdown(self.dist)
            self.summary = {"status": "completed", "rank": self.dist.rank}
            return self.summary
        self.test_result, plain = test_best(self) if test else (None, None)
        summary = run_summary(self, self.test_result, plain)
        self.emit("on_summary", summary)
        self.summary = summary
        write_json(self.run_dir / "summary.json", summary)
        self.emit("on_run_end", summary)
        barrier(self.dist)  # the other ranks wait here to tear the group down together
        shutdown(self.dist)
        torch.set_num_threads(self.threads_before)  # the caller's count again (threads.py lowered it)
        self.release_run_dir()
        return summary

    # ----- checkpoints (train/state.py says what they hold) -----
    def checkpoint_payload(self) -> dict[str, Any]:
        return checkpoint_payload(self)

    def save(self, payload: dict[str, Any], path: Path) -> None:
        save_checkpoint(payload, path)
        if Path(path).name == "last.pt":
            self.saved_step = payload["state"]["step"]

    # ----- set-up helpers -----
    def loader(self, split: Any, shuffle: bool = False, augment: bool = False) -> BatchLoader:
        world = self.dist.world_size if shuffle else 1  # training batches are sharded; evaluation is not
        if self.config.batch_size % world:
            raise ConfigError(f"batch_size {self.config.batch_size} must divide evenly among {world} processes")
        return BatchLoader(
            split,
            self.config.batch_size // world if shuffle else max(self.config.batch_size, 512),
            self.normalizer,
            self.device,
            shuffle=shuffle,
            augment=parse_augment(self.config.augment_pipeline()) if augment else None,
            seed=self.config.seed,
            # like fastai, drop the ragged last training batch: a batch of 1 breaks BatchNorm
            drop_last=shuffle and len(split) >= self.config.batch_size,
            channels_last=self.config.channels_last,
            rank=self.dist.rank if shuffle else 0,
            world_size=world,
            sampler=self.config.sampler,
        )

    def _agree_run_dir(self, config: TrainConfig) -> Path:
        """Rank 0 creates the run directory (a timestamp by default; --resume's own) and owns it until `finish`
        (a second process gets a ConfigError); the other ranks take its choice, or its error."""
        chosen: list[Any] = [(None, None)]  # (path, error)
        if self.dist.is_main:
            try:
                self.run_lock = (
                    lock_run_dir(config.resume, "--resume")
                    if config.resume
                    else claim_run_dir(config.out, config.overwrite)
                )
                chosen = [(str(self.run_lock.path), None)]
            except ConfigError as exc:
                chosen = [(None, str(exc))]
        if self.dist.enabled:
            torch.distributed.broadcast_object_list(chosen, src=0)
        path, error = chosen[0]
        if error:
            raise ConfigError(error)
        return Path(path)

    def release_run_dir(self) -> None:
        """Give up the run directory (`finish` does): another process may write it now."""
        if self.run_lock is not None:
            self.run_lock.release()
            self.run_lock = None


def _saved_threads(run_dir: str | None) -> int | None:
    """The thread count a run started with (its env.json), for its resume; None when unknown."""
    try:
        threads = loads_json((Path(run_dir or ".") / "env.json").read_text()).get("threads")
    except (OSError, ValueError, AttributeError):
        return None
    return threads if isinstance(threads, int) and threads >= 1 else None


def train(config: TrainConfig | None = None, **overrides: Any) -> dict[str, Any]:
    """Train from a config (or keyword options) and return the run summary; a run that diverged raises
    TrainingDiverged (its files are written; `Trainer.fit` returns the summary instead)."""
    if config is None:
        config = from_dict(overrides)
    elif overrides:
        config = from_dict({**config.to_dict(), **overrides})
    summary = Trainer(config).fit()
    if summary.get("status") == "diverged":
        raise TrainingDiverged(summary)
    return summary
