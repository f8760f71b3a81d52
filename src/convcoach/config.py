"""The run configuration: one flat dataclass, loaded from YAML and CLI flags, validated once."""
from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .registry import suggest


@dataclass
class TrainConfig:
    """Every option of `convcoach train`; each field is also a YAML key and a `--flag`."""

    recipe: str | None = None  # a shipped base config (src/convcoach/recipes/NAME.yaml), e.g. long; flags and --config override it
    # data
    data: str = "fashion-mnist"  # dataset name (fashion-mnist, mnist, cifar10, cifar100, digits), imagefolder:PATH, npz:PATH or a folder
    data_dir: str | None = None  # where the named datasets are found or downloaded (also $CONVCOACH_DATA)
    subset: int | None = None  # train on a stratified N-image subset of the training split (validation and test stay whole)
    val_fraction: float = 0.05  # share of the training split held out, stratified, for validation
    image_size: int | None = None  # resize folder images to this square size
    strict: bool = False  # fail on an unreadable image instead of skipping it
    preprocess: str = "meanstd"  # meanstd (ResNet) | mean (VGG) | none
    augment: list[str] = field(default_factory=lambda: ["hflip"])  # comma-separated ops, e.g. hflip,translate:2,rotate:10,jitter:0.4,randaugment:2:9 (none: off; README)
    progressive_resize: str | None = None  # START[:FRACTION]: train at START px, growing to full size over FRACTION (0.5) of the epochs
    memory_limit_gb: float = 4.0  # larger image folders stream from disk
    # model
    model: str = "resnet"  # linear | mlp | cnn | vgg | resnet
    depth: int | None = None  # layers (None: the model's default, resnet 14)
    width: int | None = None  # channels of the first stage, doubling per stage (None: the model's default)
    activation: str = "relu"  # relu | leaky_relu | elu | gelu | silu | tanh | sigmoid
    norm: str = "batch"  # batch | layer | instance | group:G | none
    dropout: float = 0.0  # inverted dropout before the classifier layers
    init: str = "auto"  # auto | normal:STD | xavier | xavier_uniform | kaiming | kaiming_uniform | orthogonal | zeros | constant:V | lsuv | default
    zero_init_residual: bool = True  # start each residual branch's last BatchNorm at 0
    model_options: dict[str, Any] = field(default_factory=dict)  # builder-specific options, e.g. stem=none,shortcut=identity
    # loss and regularization
    loss: str = "cross_entropy"  # cross_entropy | svm | kl
    label_smoothing: float = 0.1  # share of the target spread evenly over all classes
    reg: str | None = None  # l1:LAMBDA | l2:LAMBDA | elastic:LAMBDA[:BETA], added to the loss
    reg_all: bool = False  # also penalize biases and norm parameters
    # stochastic regularizers and constraints (README "Regularization and augmentation")
    dropconnect: float = 0.0  # drop each Linear weight with this probability in training (Wan et al. 2013)
    stochastic_depth: float = 0.0  # resnet: drop probability of the last residual block, linear decay over depth
    max_norm: float | None = None  # after every step, cap each unit's incoming weight vector at this L2 norm
    input_noise: float = 0.0  # std of additive Gaussian noise on training inputs (normalized units)
    cutout: int = 0  # side of a square zeroed at a random place in each training image
    mixup: float = 0.0  # alpha of the Beta(alpha, alpha) mixing weight; 0 is off
    cutmix: float = 0.0  # alpha of cutmix's Beta(alpha, alpha); with mixup too, each batch picks one
    # optimization
    optimizer: str = "muon"  # sgd | momentum | nesterov | adagrad | rmsprop | adam | adamw | muon
    lr: float | None = None  # None: the optimizer's default (nesterov/muon 0.8, momentum 0.05, sgd 0.1, adagrad 0.01, rmsprop/adam/adamw 1e-3)
    momentum: float = 0.9  # rho of momentum/nesterov/muon; beta1 of adam/adamw
    momentum_convention: str = "sum"  # sum: v = rho*v + g | ema: v = rho*v + (1-rho)*g
    weight_decay: float = 5e-4  # on conv/linear weights only (decoupled for adamw; muon: linear only)
    muon_lr: float = 0.02  # muon: each conv filter bank's relative step per update (its norm is kept); lr drives the rest
    batch_size: int = 256  # the global batch (split among DDP processes)
    base_batch_size: int | None = None  # lr scales with batch_size / base_batch_size
    epochs: int = 20  # passes over the training split
    time_budget: float | None = None  # minutes of wall time: after epoch 1, epochs is cut to what fits and the schedule re-planned
    schedule: str = "onecycle"  # constant | step:E1,E2[:GAMMA] | exp:GAMMA | cosine | linear | invsqrt | onecycle[:PCT], stepped per iteration
    warmup: int = 0  # linear warmup iterations, composed with any schedule
    ema: float = 0.0  # decay of an exponential moving average of the weights (e.g. 0.998): validation, best.pt and test use it; 0 is off
    # early stopping (patience None: off)
    patience: int | None = None  # stop after this many epochs without a better validation accuracy
    min_delta: float = 0.0  # the smallest gain in validation accuracy that counts as better
    smoothing: float = 0.0  # EMA factor on the validation metric before comparing
    # guard
    explosion_factor: float = 3.0  # stop as diverged when the loss exceeds this many times the first
    # coach monitors: dead ReLUs, gradient norms, update/weight ratios every N iterations
    monitors: bool = True  # the coach's activation/gradient/update monitors
    monitor_every: int = 50  # iterations between monitor samples
    # run
    seed: int = 0  # seeds splits, initialization, shuffling and augmentation
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    device: str = "auto"  # auto | cpu | cuda[:N]
    channels_last: bool = True  # NHWC memory format (faster convolutions with oneDNN and on tensor cores)
    tta: str | None = "auto"  # final test pass: auto (flip when trained with hflip) | flip | 10crop | multiscale | random:N | none
    nproc: int = 1  # >1: launch this many DDP processes on this machine through torchrun
    sync_bn: bool = False  # SyncBatchNorm across DDP processes (CUDA only)
    compile: bool = False  # torch.compile the model (useful on CUDA; off by default)
    out: str | None = None  # the run directory (none: runs/<timestamp>)
    resume: str | None = None  # a run directory to continue from its last.pt
    checkpoint_every: int = 0  # also write last.pt every N iterations inside an epoch (0: at epoch ends only)
    quiet: bool = False  # no per-epoch progress lines
    report: bool = True  # write report.html into the run directory at the end

    def validate(self) -> TrainConfig:
        """Check values once at the edge; names are checked against the registries."""
        from .data.augment import parse_augment
        from .data.sources import check_data_spec
        from .models import MODELS
        from .models.init import check_init
        from .models.layers import check_activation, check_norm
        from .train.losses import LOSSES
        from .train.optim import OPTIMIZERS
        from .train.regularizers import parse_reg
        from .train.schedules import parse_schedule

        check_data_spec(self.data)
        MODELS.get(self.model)
        from .models import model_options

        known = model_options(self.model)
        for key in self.model_options:
            if key not in known:
                raise ConfigError(f"model '{self.model}' has no option '{key}'{suggest(key, known)}; options: {', '.join(known)}")
        check_activation(self.activation)
        check_norm(self.norm)
        check_init(self.init)
        LOSSES.get(self.loss)
        OPTIMIZERS.get(self.optimizer)
        parse_schedule(self.schedule)
        parse_reg(self.reg)
        _in_range("val_fraction", self.val_fraction, 0.0, 0.9)
        _in_range("dropout", self.dropout, 0.0, 0.99)
        _in_range("dropconnect", self.dropconnect, 0.0, 0.99)
        _in_range("stochastic_depth", self.stochastic_depth, 0.0, 0.99)
        for key in ("input_noise", "cutout", "mixup", "cutmix"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)}")
        if self.max_norm is not None and not self.max_norm > 0:
            raise ConfigError(f"max_norm must be > 0, got {self.max_norm}")
        parse_augment(self.augment_pipeline())
        from .train.progressive import parse_progressive

        parse_progressive(self.progressive_resize)
        if self.resolved_tta():
            from .evaluate.tta import parse_tta

            parse_tta(self.resolved_tta())
        _in_range("label_smoothing", self.label_smoothing, 0.0, 0.99)
        _in_range("momentum", self.momentum, 0.0, 0.9999)
        _in_range("smoothing", self.smoothing, 0.0, 0.99)
        if self.ema and not 0.0 < self.ema < 1.0:
            raise ConfigError(f"ema must be 0 (off) or a decay in (0, 1) such as 0.998, got {self.ema}")
        for key in ("batch_size", "epochs", "monitor_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        for key in ("subset", "depth", "width", "image_size", "base_batch_size", "patience"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"{key} must be >= 1, got {value}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ConfigError(f"time_budget is in minutes and must be > 0, got {self.time_budget}")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not self.muon_lr > 0:
            raise ConfigError(f"muon_lr is a relative step per update and must be > 0 (e.g. 0.05), got {self.muon_lr}")
        for key in ("weight_decay", "warmup"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)}")
        for key, value in dataclasses.asdict(self).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{key}: '{value}' is not a finite number")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be in 0..{2**32 - 1}, got {self.seed}")
        if self.optimizer == "nesterov" and self.momentum_convention == "ema":
            raise ConfigError("optimizer nesterov supports only momentum_convention sum (torch's Nesterov needs zero dampening); use --optimizer momentum for the ema form")
        if self.optimizer in ("nesterov", "muon") and self.momentum == 0:
            raise ConfigError(f"optimizer {self.optimizer} needs momentum > 0 (got 0); use --optimizer sgd for plain SGD")
        if not self.explosion_factor > 1:
            raise ConfigError(f"explosion_factor must be > 1 (stop when the loss exceeds that many times the first), got {self.explosion_factor}")
        if self.nproc < 1:
            raise ConfigError(f"nproc must be >= 1, got {self.nproc}")
        if self.memory_limit_gb is not None and not self.memory_limit_gb > 0:
            raise ConfigError(f"memory_limit_gb must be > 0, got {self.memory_limit_gb}")
        if (self.resolved_tta() or "").split(":")[0].strip().lower() == "random" and not self.augment_pipeline():
            raise ConfigError(f"tta '{self.tta}' draws the training augmentation, and augment is none: give --augment or another --tta")
        if self.checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every is in iterations and must be >= 0 (0: at epoch ends only), got {self.checkpoint_every}")
        _one_of("preprocess", self.preprocess, ["meanstd", "mean", "none"])
        _one_of("momentum_convention", self.momentum_convention, ["sum", "ema"])
        _one_of("precision", self.precision, ["auto", "fp32", "bf16", "fp16"])
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

    def augment_pipeline(self) -> list[str]:
        """The training augmentation specs: `augment`, then cutout and input noise when set."""
        specs = [s for s in self.augment if s.strip().lower() != "none"]
        if self.cutout:
            specs.append(f"cutout:{self.cutout}")
        if self.input_noise:
            specs.append(f"noise:{self.input_noise}")
        return specs


def _in_range(key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{key} must be in [{low}, {high}], got {value}")


def _one_of(key: str, value: str, options: list[str]) -> None:
    if value not in options:
        raise ConfigError(f"{key} must be one of {', '.join(options)}; got '{value}'")


@functools.cache
def field_docs(cls: type = TrainConfig) -> dict[str, str]:
    """Field name -> the comment after it in the class source: the flags' --help text, written once
    (read once per process: five commands share TrainConfig's flags)."""
    import inspect
    import io
    import tokenize

    docs, name = {}, None
    for token in tokenize.generate_tokens(io.StringIO(inspect.getsource(cls)).readline):
        if token.type == tokenize.NAME and token.start[1] == 4 and name is None:
            name = token.string  # the first name on a field line
        elif token.type == tokenize.COMMENT and name:
            docs[name] = token.string.lstrip("# ").strip()
        elif token.type in (tokenize.NEWLINE, tokenize.NL):
            name = None
    fields = config_fields(cls)
    return {key: text for key, text in docs.items() if key in fields}


def config_fields(cls: type = TrainConfig) -> dict[str, Any]:
    """Field name -> resolved type annotation."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def unwrap_optional(annotation: Any) -> Any:
    """`int | None` -> int; other annotations unchanged."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def coerce(key: str, value: Any, annotation: Any) -> Any:
    """Convert a YAML or CLI value to the field's type, with an error naming the key."""
    base = unwrap_optional(annotation)
    if value is None:
        if base is not annotation:
            return None
        raise ConfigError(f"{key} may not be empty")
    origin = typing.get_origin(base)
    try:
        if origin is dict:
            return parse_mapping(key, value)
        if origin is list:
            items = value.split(",") if isinstance(value, str) else list(value)
            return [str(item).strip() for item in items if str(item).strip()]
        if base is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if base is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if base is float:
            number = float(value)
            if not math.isfinite(number):
                raise ConfigError(f"{key}: '{value}' is not a finite number")
            return number
        return str(value)
    except ConfigError:
        raise
    except (TypeError, ValueError, OverflowError):
        name = getattr(base, "__name__", str(base))
        raise ConfigError(f"{key}: '{value}' is not a valid {name}") from None


def parse_mapping(key: str, value: Any) -> dict[str, Any]:
    """'a=1,b=false' (CLI) or a YAML mapping -> dict with YAML-typed values."""
    if isinstance(value, dict):
        return dict(value)
    result = {}
    for item in str(value).split(","):
        if not item.strip():
            continue
        name, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"{key}: '{item}' is not of the form name=value")
        try:
            result[name.strip()] = yaml.safe_load(raw.strip())
        except yaml.YAMLError:
            raise ConfigError(f"{key}: the value of '{name.strip()}' ('{raw.strip()}') is not a plain value; give name=value pairs separated by commas") from None
    return result


def from_dict(values: dict[str, Any], cls: type = TrainConfig, source: str = "config") -> Any:
    """Build a config from a mapping; unknown keys are errors naming the nearest valid key."""
    fields = config_fields(cls)
    if "recipe" in fields and values.get("recipe"):
        from .recipes import load_recipe

        values = {**load_recipe(str(values["recipe"])), **values}
    kwargs = {}
    for key, value in values.items():
        norm_key = str(key).replace("-", "_")
        if norm_key not in fields:
            raise ConfigError(f"unknown key '{key}' in {source}{suggest(norm_key, list(fields))}")
        kwargs[norm_key] = coerce(norm_key, value, fields[norm_key])
    return cls(**kwargs)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values")
    return values


def save_yaml(config: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """A validated TrainConfig from an optional YAML file plus keyword overrides."""
    values = load_yaml(path) if path else {}
    values.update(overrides)
    return from_dict(values, source=str(path) if path else "config").validate()
