"""`convcoach train --dry-run`: what a run would do, without training or writing a run directory: the
resolved options, the data's shape and split sizes, the model's layers, parameters and FLOPs per image
(built on the meta device), and the planned length, batches and learning rate."""

from __future__ import annotations

import dataclasses

import torch
import yaml

from ..config import TrainConfig
from ..data import DataBundle
from ..models import model_footprint
from ..models.footprint import check_parameters
from ..models.spec import CONFIG_KEY, build_model, model_spec
from ..models.summary import layer_table, si
from .accumulate import Accumulation
from .lr_finder import needs_auto
from .resume import resumed_config
from .setup import effective_lr, load_run_data
from .summary import data_summary, epochs_rule


def describe_run(config: TrainConfig) -> str:
    """The dry run's text for a validated `config` (a --resume: the saved options it would continue)."""
    if config.resume:
        config = resumed_config(config)[0].validate()
    data = load_run_data(config)
    return "\n".join(
        [
            "convcoach train --dry-run: nothing is trained and no run directory is written",
            "",
            "options (the run's config.yaml):",
            *("  " + line for line in yaml.safe_dump(dataclasses.asdict(config), sort_keys=False).splitlines()),
            "",
            describe_data(data),
            "",
            *describe_model(config, data),
            "",
            *describe_plan(config, len(data.train)),
        ]
    )


def describe_data(data: DataBundle) -> str:
    summary = data_summary(data)
    shape = "x".join(map(str, summary["shape"]))
    sizes = ", ".join(f"{split} {summary[split]:,}" for split in ("train", "val", "test"))
    return f"data: {summary['name']}, {len(summary['classes'])} classes, {shape} (CxHxW) images; {sizes}"


def describe_model(config: TrainConfig, data: DataBundle) -> list[str]:
    """The model's layer table (built on the meta device) and its totals, with a training step's memory."""
    spec = model_spec(config, data.shape, data.num_classes)
    found = model_footprint(spec["name"], data.shape, data.num_classes, **spec["options"])
    if found is not None:
        check_parameters(f"model '{spec['name']}'", found)
    with torch.device("meta"):
        model = build_model(spec)  # the real build's checks, without allocating its weights
    table = layer_table(model, data.shape)
    options = ", ".join(
        f"{CONFIG_KEY.get(key, key)}={value}" for key, value in spec["options"].items() if value is not None
    )
    totals = [
        f"{table.parameters:,} parameters ({binary(table.parameters * 4)} in fp32), "
        f"{si(table.flops)} FLOPs per image (forward; a multiply-add counts 2)"
    ]
    if found is not None:
        step = binary(found.training_bytes(config.batch_size))
        totals.append(f"about {step} of memory for a forward and backward pass of {config.batch_size} images")
    return [f"model: {spec['name']} ({options})", *("  " + line for line in table.lines()), *totals]


def binary(size: int) -> str:
    """Bytes in KiB, MiB or GiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size / 2**10:.1f} KiB"


def micro_batches(config: TrainConfig, train_size: int) -> int:
    """The loader's batches per epoch (Trainer.loader's rule: the ragged last batch is dropped)."""
    world = max(1, config.nproc)
    per_rank, batch = train_size // world, max(1, config.batch_size // world)
    return per_rank // batch if train_size >= config.batch_size else -(-per_rank // batch)


def describe_plan(config: TrainConfig, train_size: int) -> list[str]:
    """The run's length, batches and learning rate."""
    plan = Accumulation(config.accumulate, micro_batches(config, train_size))
    batch = f"batch {config.batch_size}"
    if config.accumulate > 1:
        batch += f" x accumulate {config.accumulate} = {config.effective_batch_size()} images per step"
    lr = (
        "chosen by a short LR range test before training (--lr auto)"
        if needs_auto(config)
        else f"{effective_lr(config):g} at peak"
    )
    return [
        f"length: {epochs_rule(config)}; {plan.steps_per_epoch} optimizer steps per epoch ({batch})",
        f"optimizer {config.optimizer}, lr {lr}, schedule {config.schedule}"
        + (f", gradients clipped to norm {config.clip_grad:g}" if config.clip_grad else ""),
        f"run directory: {config.out or 'runs/<timestamp>'} (not created)",
    ]
