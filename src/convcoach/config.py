"""The run configuration: one flat dataclass, loaded from YAML and CLI flags, validated once."""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .coerce import coerce, parse_mapping, unwrap_optional
from .errors import ConfigError
from .files import load_yaml, save_yaml
from .recipes import load_recipe
from .registry import check_spec, suggest

__all__ = [
    "TrainConfig",
    "coerce",
    "config_fields",
    "field_docs",
    "from_dict",
    "load_config",
    "load_yaml",
    "option",
    "parse_mapping",
    "save_yaml",
    "unwrap_optional",
]


# The default recipe's length on any machine: with no --epochs, as many of RULE_EPOCHS epochs as fit
# in RULE_MINUTES of wall time, planned after the first epoch from its measured time (train/budget.py),
# so a 2-core CPU ends within 5 minutes whatever its speed (~20 epochs on an AVX512-BF16 EPYC).
RULE_EPOCHS, RULE_MINUTES = 30, 4.75
FIXED_EPOCHS = 20  # the length of finetune runs and tune trials when --epochs is not given


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    factory: Callable[[], Any] | None = None,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    choices: tuple[str, ...] | None = None,
    spec: str | None = None,
    rule: str | None = None,
) -> Any:
    """A config field with what validation and the docs need: its `help` (the --flag's text and the
    reference), bounds (`low` <= value <= `high`, value > `above`), `choices`, the `spec` kind whose
    registered check parses its spec strings (registry.SPEC_CHECKS), and a `rule`: the error text
    ('... got {value}') when the bounds fail, if the generic one would not explain the unit."""
    metadata = {"help": help, "low": low, "high": high, "above": above, "choices": choices, "spec": spec, "rule": rule}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    """Every option of `convcoach train`; each field is also a YAML key and a `--flag`."""

    recipe: str | None = option(
        None,
        "a shipped base config (src/convcoach/recipes/NAME.yaml), e.g. long; flags and --config override it",
    )
    # data
    data: str = option(
        "fashion-mnist",
        "dataset name (fashion-mnist, mnist, cifar10, cifar100, digits), imagefolder:PATH, npz:PATH or a folder",
        spec="data",
    )
    data_dir: str | None = option(None, "where the named datasets are found or downloaded (also $CONVCOACH_DATA)")
    subset: int | None = option(
        None,
        "train on a stratified N-image subset of the training split (validation and test stay whole)",
        low=1,
    )
    sampler: str = option(
        "random",
        "random (each image once per epoch) | balanced (draws each class equally often, with replacement)",
        spec="sampler",
    )
    val_fraction: float = option(
        0.05,
        "share of the training split held out, stratified, for validation",
        low=0.0,
        high=0.9,
    )
    image_size: int | None = option(
        None, "resize the images to this square size (default: the source's; the weights' with --pretrained)", low=1
    )
    channels: int | None = option(
        None, "1 (gray) or 3 (RGB, gray replicated): convert the images (default: the source's; 3 with --pretrained)"
    )
    strict: bool = option(False, "fail on an unreadable image instead of skipping it")
    preprocess: str = option("meanstd", "meanstd (ResNet) | mean (VGG) | none", choices=("meanstd", "mean", "none"))
    augment: list[str] = option(
        factory=lambda: ["hflip"],
        help="comma-separated ops, e.g. hflip,translate:2,rotate:10,jitter:0.4,randaugment:2:9 (none: off; README)",
        spec="augment",
    )
    progressive_resize: str | None = option(
        None,
        "START[:FRACTION]: train at START px, growing to full size over FRACTION (0.5) of the epochs",
        spec="progressive",
    )
    memory_limit_gb: float = option(4.0, "larger image folders stream from disk", above=0)
    # model
    model: str = option(
        "resnet",
        "linear | mlp | cnn | vgg | resnet, or an ImageNet architecture: resnet18/34/50, vgg11_bn, vgg16_bn, "
        "alexnet, mobilenet_v3_large",
        spec="model",
    )
    pretrained: str | None = option(
        None,
        "start from weights: imagenet (torchvision's for --model), imagenet:NAME, hf-hub:REPO or a weights file",
        spec="pretrained",
    )
    depth: int | None = option(None, "layers (None: the model's default, resnet 14)", low=1)
    width: int | None = option(
        None,
        "channels of the first stage, doubling per stage (None: the model's default)",
        low=1,
    )
    activation: str = option("relu", "relu | leaky_relu | elu | gelu | silu | tanh | sigmoid", spec="activation")
    norm: str = option("batch", "batch | layer | instance | group:G | none", spec="norm")
    dropout: float = option(0.0, "inverted dropout before the classifier layers", low=0.0, high=0.99)
    init: str = option(
        "auto",
        "auto | normal:STD | xavier | xavier_uniform | kaiming | kaiming_uniform | orthogonal | zeros | constant:V "
        "| lsuv | default",
        spec="init",
    )
    zero_init_residual: bool = option(True, "start each residual branch's last BatchNorm at 0")
    model_options: dict[str, Any] = option(
        factory=dict, help="builder-specific options, e.g. stem=none,shortcut=identity"
    )
    # loss and regularization
    loss: str = option("cross_entropy", "cross_entropy | svm | kl", spec="loss")
    label_smoothing: float = option(0.1, "share of the target spread evenly over all classes", low=0.0, high=0.99)
    class_weights: list[str] = option(
        factory=lambda: ["none"],
        help="loss weight per class: balanced (n / (classes * count) from the training split) | none | W1,W2,...",
        spec="class_weights",
    )
    reg: str | None = option(None, "l1:LAMBDA | l2:LAMBDA | elastic:LAMBDA[:BETA], added to the loss", spec="reg")
    reg_all: bool = option(False, "also penalize biases and norm parameters")
    # stochastic regularizers and constraints (README "Regularization and augmentation")
    dropconnect: float = option(
        0.0,
        "drop each Linear weight with this probability in training (Wan et al. 2013)",
        low=0.0,
        high=0.99,
    )
    stochastic_depth: float = option(
        0.0,
        "resnet: drop probability of the last residual block, linear decay over depth",
        low=0.0,
        high=0.99,
    )
    max_norm: float | None = option(
        None,
        "after every step, cap each unit's incoming weight vector at this L2 norm",
        above=0,
    )
    input_noise: float = option(0.0, "std of additive Gaussian noise on training inputs (normalized units)", low=0)
    cutout: int = option(0, "side of a square zeroed at a random place in each training image", low=0)
    mixup: float = option(0.0, "alpha of the Beta(alpha, alpha) mixing weight; 0 is off", low=0)
    cutmix: float = option(0.0, "alpha of cutmix's Beta(alpha, alpha); with mixup too, each batch picks one", low=0)
    # optimization
    optimizer: str = option(
        "muon",
        "sgd | momentum | nesterov | adagrad | rmsprop | adam | adamw | muon",
        spec="optimizer",
    )
    lr: float | str | None = option(
        None,
        "peak learning rate, or auto: a few-second LR range test before training picks it (env.json says why). "
        "Unset: the optimizer's default where it was measured (muon/nesterov 0.8 for the BatchNorm ResNet; "
        "adam/adamw/rmsprop 1e-3 for any model), else auto",
        spec="lr",
    )
    momentum: float = option(0.9, "rho of momentum/nesterov/muon; beta1 of adam/adamw", low=0.0, high=0.9999)
    momentum_convention: str = option("sum", "sum: v = rho*v + g | ema: v = rho*v + (1-rho)*g", choices=("sum", "ema"))
    weight_decay: float = option(5e-4, "on conv/linear weights only (decoupled for adamw; muon: linear only)", low=0)
    muon_lr: float = option(
        0.02,
        "muon: each conv filter bank's relative step per update (its norm is kept); lr drives the rest",
        above=0,
        rule="muon_lr is a relative step per update and must be > 0 (e.g. 0.05), got {value}",
    )
    batch_size: int = option(
        256, "the global batch of one forward pass (split among DDP processes; see accumulate)", low=1
    )
    base_batch_size: int | None = option(
        None, "lr scales with the effective batch (batch_size x accumulate) / base_batch_size", low=1
    )
    accumulate: int = option(
        1,
        "micro-batches of batch_size per optimizer step (gradient accumulation): the effective batch is "
        "batch_size x accumulate; BatchNorm and mixup see each micro-batch",
        low=1,
    )
    clip_grad: float | None = option(
        None, "before every optimizer step, scale the gradients down to this global L2 norm if above it", above=0
    )
    sam: float = option(
        0.0,
        "sharpness-aware minimization: the step takes its gradient at the weights moved this far (L2) "
        "up the loss (e.g. 0.05); two passes a step; 0 is off",
        low=0,
    )
    epochs: int | None = option(
        None,
        "passes over the training split (none: the default recipe's rule, as many of 30 as fit in "
        "--time-budget, 4.75 minutes unless given)",
        low=1,
    )
    time_budget: float | None = option(
        None,
        "minutes of wall time: after epoch 1, epochs is cut to what fits and the schedule re-planned",
        above=0,
        rule="time_budget is in minutes and must be > 0, got {value}",
    )
    schedule: str = option(
        "onecycle",
        "constant | step:E1,E2[:GAMMA] | exp:GAMMA | cosine | linear | invsqrt | onecycle[:PCT], stepped per iteration",
        spec="schedule",
    )
    warmup: int = option(0, "linear warmup iterations, composed with any schedule", low=0)
    ema: float = option(
        0.0,
        "decay of an exponential moving average of the weights (e.g. 0.998): validation, best.pt and test use it; "
        "0 is off",
    )
    # early stopping (patience None: off)
    patience: int | None = option(None, "stop after this many epochs without a better validation accuracy", low=1)
    min_delta: float = option(0.0, "the smallest gain in validation accuracy that counts as better")
    smoothing: float = option(0.0, "EMA factor on the validation metric before comparing", low=0.0, high=0.99)
    # guard
    explosion_factor: float = option(
        3.0,
        "stop as diverged when the loss exceeds this many times the first",
        above=1,
        rule="explosion_factor must be > 1 (stop when the loss exceeds that many times the first), got {value}",
    )
    # coach monitors: dead ReLUs, gradient norms, update/weight ratios every N iterations
    monitors: bool = option(True, "the coach's activation/gradient/update monitors")
    monitor_every: int = option(50, "iterations between monitor samples", low=1)
    # run
    seed: int = option(
        0,
        "seeds splits, initialization, shuffling and augmentation",
        low=0,
        high=2**32 - 1,
        rule="seed must be in 0..4294967295, got {value}",
    )
    precision: str = option("auto", "auto | fp32 | bf16 | fp16", choices=("auto", "fp32", "bf16", "fp16"))
    device: str = option("auto", "auto | cpu | cuda[:N]")
    threads: int | None = option(
        None, "CPU threads (none: torch's count, less the cores other work keeps busy at start-up)", low=1
    )
    channels_last: bool = option(True, "NHWC memory format (faster convolutions with oneDNN and on tensor cores)")
    tta: str | None = option(
        "auto",
        "final test pass: auto (flip when trained with hflip) | flip | 10crop | multiscale | random:N | none",
        spec="tta",
    )
    nproc: int = option(1, ">1: launch this many DDP processes on this machine through torchrun", low=1)
    sync_bn: bool = option(False, "SyncBatchNorm across DDP processes (CUDA only)")
    compile: bool = option(False, "torch.compile the model (useful on CUDA; off by default)")
    out: str | None = option(None, "the run directory (none: runs/<timestamp>)")
    resume: str | None = option(None, "a run directory to continue from its last.pt")
    overwrite: bool = option(
        False, "start a new run in an --out that holds an earlier one (its summary.json, last.pt and best.pt go)"
    )
    checkpoint_every: int = option(
        0,
        "also write last.pt every N iterations inside an epoch (0: at epoch ends only)",
        low=0,
        rule="checkpoint_every is in iterations and must be >= 0 (0: at epoch ends only), got {value}",
    )
    quiet: bool = option(False, "no per-epoch progress lines")
    report: bool = option(True, "write report.html into the run directory at the end")
    log: list[str] = option(
        factory=list,
        help="experiment logs besides metrics.jsonl, comma-separated: tensorboard, mlflow, csv (guide: Logging)",
        spec="log",
    )
    mlflow_uri: str | None = option(
        None, "--log mlflow's tracking store (none: sqlite:///RUN_DIR/mlflow.db); a server: http://HOST:5000"
    )

    def validate(self) -> TrainConfig:
        """Check values once at the edge: each spec string by the check its package registered
        (registry.SPEC_CHECKS), each bound and choice from the field's metadata, then the rules
        that tie fields together."""
        if self.epochs is None:  # the default recipe's one rule for every machine (docs: "The default recipe")
            self.epochs = RULE_EPOCHS
            self.time_budget = RULE_MINUTES if self.time_budget is None else self.time_budget
        fields = dataclasses.fields(self)
        for item in fields:  # bounds first: some spec checks read other fields (augment reads cutout)
            _check_bounds(item.name, getattr(self, item.name), item.metadata)
        for item in fields:
            if item.metadata.get("spec"):
                check_spec(item.metadata["spec"], getattr(self, item.name), self)
        for key, value in dataclasses.asdict(self).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{key}: '{value}' is not a finite number")
        if self.ema and not 0.0 < self.ema < 1.0:
            raise ConfigError(f"ema must be 0 (off) or a decay in (0, 1) such as 0.998, got {self.ema}")
        if self.optimizer == "nesterov" and self.momentum_convention == "ema":
            raise ConfigError(NESTEROV_EMA)
        if self.optimizer in ("nesterov", "muon") and self.momentum == 0:
            raise ConfigError(
                f"optimizer {self.optimizer} needs momentum > 0 (got 0); use --optimizer sgd for plain SGD"
            )
        if (self.resolved_tta() or "").split(":")[0].strip().lower() == "random" and not self.augment_pipeline():
            raise ConfigError(
                f"tta '{self.tta}' draws the training augmentation, and augment is none: "
                "give --augment or another --tta"
            )
        if self.sam and self.accumulate > 1:
            raise ConfigError(
                f"sam {self.sam} takes two passes over each batch and accumulate {self.accumulate} splits it: "
                "give one of them (e.g. --batch-size smaller than the effective batch, with --accumulate 1)"
            )
        if self.channels not in (None, 1, 3):
            raise ConfigError(f"channels must be 1 (gray) or 3 (RGB); got {self.channels}")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda[:N], got '{self.device}'")
        return self

    def resolved_tta(self) -> str | None:
        """'auto' means flip TTA only when training used hflip: the model must know the view."""
        if not self.tta or self.tta == "none":
            return None
        if self.tta == "auto":
            return "flip" if any(op.split(":")[0].strip().lower() == "hflip" for op in self.augment) else None
        return self.tta

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def effective_batch_size(self) -> int:
        """The images per optimizer step: batch_size (the micro-batch the loader serves) x accumulate."""
        return self.batch_size * self.accumulate

    def augment_pipeline(self) -> list[str]:
        """The training augmentation specs: `augment`, then cutout and input noise when set."""
        specs = [s for s in self.augment if s.strip().lower() != "none"]
        if self.cutout:
            specs.append(f"cutout:{self.cutout}")
        if self.input_noise:
            specs.append(f"noise:{self.input_noise}")
        return specs


NESTEROV_EMA = (
    "optimizer nesterov supports only momentum_convention sum (torch's Nesterov needs zero dampening); "
    "use --optimizer momentum for the ema form"
)


def _check_bounds(key: str, value: Any, metadata: Any) -> None:
    """The field's bounds and choices (see `option`); None (an unset optional) passes."""
    choices = metadata.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}; got '{value}'")
    low, high, above = metadata.get("low"), metadata.get("high"), metadata.get("above")
    if value is None or (low is None and high is None and above is None):
        return
    if high is not None:
        ok = low <= value <= high
    else:  # a lone lower bound lets NaN through to the finite check, which names it better
        ok = not (low is not None and value < low) and (above is None or value > above)
    if ok:
        return
    if metadata.get("rule"):
        raise ConfigError(metadata["rule"].format(value=value))
    if low is not None and high is not None:
        raise ConfigError(f"{key} must be in [{low}, {high}], got {value}")
    raise ConfigError(
        f"{key} must be > {above}, got {value}" if above is not None else f"{key} must be >= {low}, got {value}"
    )


def field_docs(cls: type = TrainConfig) -> dict[str, str]:
    """Field name -> its help text (`option(help=...)`): the --flags' help and the config reference."""
    return {f.name: f.metadata["help"] for f in dataclasses.fields(cls) if f.metadata.get("help")}


def config_fields(cls: type = TrainConfig) -> dict[str, Any]:
    """Field name -> resolved type annotation."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def from_dict(values: dict[str, Any], cls: type = TrainConfig, source: str = "config") -> Any:
    """Build a config from a mapping; unknown keys are errors naming the nearest valid key."""
    fields = config_fields(cls)
    if "recipe" in fields and values.get("recipe"):
        values = {**load_recipe(str(values["recipe"]), values), **values}
    kwargs = {}
    for key, value in values.items():
        norm_key = str(key).replace("-", "_")
        if norm_key not in fields:
            raise ConfigError(f"unknown key '{key}' in {source}{suggest(norm_key, list(fields))}")
        kwargs[norm_key] = coerce(norm_key, value, fields[norm_key])
    return cls(**kwargs)


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """A validated TrainConfig from an optional YAML file plus keyword overrides."""
    values = load_yaml(path) if path else {}
    values.update(overrides)
    return from_dict(values, source=str(path) if path else "config").validate()
