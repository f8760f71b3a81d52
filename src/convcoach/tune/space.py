"""The search space: parse `lr=1e-6..1e-2:log, optimizer=[sgd,adam]` (or YAML), check it, sample it with Optuna."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..config import TrainConfig, coerce, config_fields, from_dict, unwrap_optional
from ..errors import ConfigError
from ..registry import suggest

# The data are loaded once and shared by every trial, and the stages set the epochs: these stay fixed.
FIXED_KEYS = {
    "data": "the data are loaded once and shared by every trial",
    "data_dir": "the data are loaded once and shared by every trial",
    "subset": "the data are loaded once and shared by every trial",
    "val_fraction": "the data are loaded once and shared by every trial",
    "image_size": "the data are loaded once and shared by every trial",
    "strict": "the data are loaded once and shared by every trial",
    "memory_limit_gb": "the data are loaded once and shared by every trial",
    "seed": "the seed fixes the validation split every trial is scored on",
    "epochs": "each stage sets it (--stage-epochs)",
    "out": "each trial writes into the tune directory",
    "resume": "trials start fresh",
    "overwrite": "each trial writes its own directory in the tune directory",
    "quiet": "it changes no result",
    "nproc": "trials run in one process (use --jobs for parallel trials)",
    "sync_bn": "trials run in one process",
    "report": "trials write no per-run HTML report",
    "log": "every trial logs to the sinks the study was given",
    "mlflow_uri": "the trials' runs nest under the study's run, in its store",
}

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"(?P<low>{_NUMBER})\.\.(?P<high>{_NUMBER})(?P<flags>(?::(?:log|int))*)")
_KEY_START = re.compile(r",\s*(?=[A-Za-z_][\w-]*\s*=)")  # a comma that starts the next `key=`


@dataclass(frozen=True)
class Param:
    """One searched key: a range [low, high] (log-uniform when `log`) or a list of choices.

    `template` puts a sampled number into a string option: 'l2:{}' searches reg=l2:LAMBDA."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] | None = None
    template: str | None = None

    @property
    def is_range(self) -> bool:
        return self.choices is None

    def describe(self) -> str:
        """The CLI form, e.g. 'lr=1e-06..0.01:log' or 'optimizer=[sgd, adam]'."""
        if not self.is_range:
            return f"{self.key}=[{', '.join(str(c) for c in self.choices)}]"
        flags = (":log" if self.log else "") + (":int" if self.integer and self.template else "")
        text = f"{_fmt(self.low, self.integer)}..{_fmt(self.high, self.integer)}{flags}"
        return f"{self.key}={self.template.replace('{}', text) if self.template else text}"

    def value_for_config(self, sampled: Any) -> Any:
        """The sampled number or choice as the config value (templates filled, list keys split)."""
        if self.template is not None:
            return self.template.replace("{}", _fmt(sampled, self.integer))
        return sampled


Space = dict[str, Param]


def _fmt(value: float, integer: bool) -> str:
    return str(int(round(value))) if integer else f"{value:.6g}"


# ----- parsing -----
def parse_space(text: str, source: str = "--space") -> Space:
    """'lr=1e-6..1e-2:log, dropout=0..0.5, optimizer=[sgd,adam], reg=l2:1e-5..1e-1:log' -> Space."""
    items = [item.strip() for item in _KEY_START.split(text.strip()) if item.strip()]
    if not items:
        raise ConfigError(f'{source}: the search space is empty; e.g. --space "lr=1e-4..1e-1:log, dropout=0..0.5"')
    space: Space = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"{source}: '{item}' is not of the form key=LOW..HIGH[:log] or key=[a,b,...]")
        key = key.strip().replace("-", "_")
        value = value.strip()
        if key in space:
            raise ConfigError(f"{source}: '{key}' is given twice; give each key one range or choice list")
        if value.startswith("[") and value.endswith("]"):
            raw = [c.strip() for c in value[1:-1].split(",") if c.strip()]
            space[key] = _choices(key, [c.replace("+", ",") for c in raw], source)
        else:
            space[key] = _range(key, value, source)
    return space


def space_from_mapping(values: dict[str, Any], source: str = "space") -> Space:
    """A YAML `space:` mapping: key: 'LOW..HIGH[:log]' | [choices] | {low, high, log, int}."""
    if not isinstance(values, dict) or not values:
        raise ConfigError(f"{source}: expected a mapping of config keys to ranges or choice lists")
    space: Space = {}
    for key, value in values.items():
        key = str(key).replace("-", "_")
        if isinstance(value, list):
            space[key] = _choices(key, [",".join(map(str, c)) if isinstance(c, list) else c for c in value], source)
        elif isinstance(value, dict):
            unknown = set(value) - {"low", "high", "log", "int"}
            if unknown or not {"low", "high"} <= set(value):
                raise ConfigError(
                    f"{source}: {key}: a range mapping takes low, high and optionally log, int; "
                    f"got {', '.join(map(str, value))}"
                )
            flags = (":log" if value.get("log") else "") + (":int" if value.get("int") else "")
            space[key] = _range(key, f"{value['low']}..{value['high']}{flags}", source)
        else:
            space[key] = _range(key, str(value), source)
    return space


def _field_type(key: str, source: str) -> Any:
    fields = config_fields(TrainConfig)
    if key not in fields:
        raise ConfigError(
            f"{source}: unknown key '{key}'{suggest(key, list(fields))}; any TrainConfig key can be searched"
        )
    if key in FIXED_KEYS:
        raise ConfigError(f"{source}: '{key}' cannot be searched: {FIXED_KEYS[key]}")
    return fields[key]


def _choices(key: str, raw: list[Any], source: str) -> Param:
    annotation = _field_type(key, source)
    base = unwrap_optional(annotation)
    if not raw:
        raise ConfigError(f"{source}: {key}: the choice list is empty")
    choices = []
    for item in raw:
        if base is not annotation and (item is None or str(item).lower() in ("none", "null")) and base in (int, float):
            choices.append(None)
        elif base in (int, float, bool):
            choices.append(coerce(key, item, annotation))
        else:  # str, list and dict keys keep their text form; Optuna stores only plain values
            choices.append(None if item is None else str(item))
    if len(set(map(repr, choices))) != len(choices):
        raise ConfigError(f"{source}: {key}: repeated choices in {raw}")
    return Param(key, choices=tuple(choices))


def _range(key: str, text: str, source: str) -> Param:
    annotation = _field_type(key, source)
    base = unwrap_optional(annotation)
    match = _RANGE.search(text)
    if match is None:
        raise ConfigError(f"{source}: {key}='{text}' is not LOW..HIGH[:log] nor a list [a, b, ...]")
    prefix, suffix = text[: match.start()], text[match.end() :]
    flags = [f for f in match.group("flags").split(":") if f]
    low, high = float(match.group("low")), float(match.group("high"))
    template = None
    if prefix or suffix:
        if base in (int, float, bool):
            raise ConfigError(f"{source}: {key}='{text}': a numeric key takes a bare LOW..HIGH range")
        template = (prefix + "{}" + suffix).replace("+", ",")
    elif base not in (int, float):
        raise ConfigError(
            f"{source}: {key} is not numeric: "
            "search it with a choice list [a, b] or a template like reg=l2:1e-5..1e-1:log"
        )
    integer = base is int or "int" in flags
    if integer and not (low.is_integer() and high.is_integer()):
        raise ConfigError(f"{source}: {key} is an integer; got the range {text}")
    if not low < high:
        raise ConfigError(
            f"{source}: {key}: the range needs low < high, got {_fmt(low, integer)}..{_fmt(high, integer)}"
        )
    if "log" in flags and low <= 0:
        raise ConfigError(f"{source}: {key}: a log range needs low > 0, got {_fmt(low, integer)}")
    return Param(key, low, high, log="log" in flags, integer=integer, template=template)


# ----- checking against the base config -----
def check_space(space: Space, base: TrainConfig) -> None:
    """Every choice and both ends of every range must make a valid config (errors name the key)."""
    for param in space.values():
        probes = list(param.choices) if not param.is_range else [param.low, param.high]
        for probe in probes:
            value = int(probe) if param.integer and probe is not None else probe
            try:
                apply_values(base, {param.key: param.value_for_config(value)})
            except ConfigError as exc:
                raise ConfigError(
                    f"space {param.describe()}: {param.key}={param.value_for_config(value)} is not valid: {exc}"
                ) from None


def apply_values(base: TrainConfig, values: dict[str, Any], **fixed: Any) -> TrainConfig:
    """The base config with searched values (and fixed overrides such as epochs/out) applied, validated."""
    merged = {**base.to_dict(), **values, **fixed}
    return from_dict(merged, source="search space").validate()


# ----- sampling -----
def suggest_value(trial: Any, param: Param) -> Any:
    """Ask an Optuna trial for this key's value (log-uniform where marked, as the notes insist)."""
    if not param.is_range:
        return trial.suggest_categorical(param.key, list(param.choices))
    if param.integer:
        return trial.suggest_int(param.key, int(param.low), int(param.high), log=param.log)
    return trial.suggest_float(param.key, param.low, param.high, log=param.log)


def sample_config(trial: Any, space: Space, base: TrainConfig, **fixed: Any) -> tuple[TrainConfig, dict[str, Any]]:
    """Sample every key, then build the trial's config; returns (config, the values as config keys take them)."""
    sampled = {key: suggest_value(trial, param) for key, param in space.items()}
    values = {key: space[key].value_for_config(value) for key, value in sampled.items()}
    return apply_values(base, values, **fixed), values


def grid_values(param: Param, points: int) -> list[Any]:
    """Grid points: the choices, or `points` values evenly spaced (in log space for log ranges)."""
    if not param.is_range:
        return list(param.choices)
    if param.log:
        values = np.logspace(math.log10(param.low), math.log10(param.high), points)
    else:
        values = np.linspace(param.low, param.high, points)
    if param.integer:
        return sorted({int(round(v)) for v in values})
    return [float(v) for v in values]


def grid_space(space: Space, points: int) -> dict[str, list[Any]]:
    """The search space Optuna's GridSampler enumerates (every combination)."""
    return {key: grid_values(param, points) for key, param in space.items()}


def grid_size(space: Space, points: int) -> int:
    return int(np.prod([len(v) for v in grid_space(space, points).values()]))


# ----- serialising (stages store their narrowed spaces in the study) -----
def space_to_dict(space: Space) -> dict[str, dict[str, Any]]:
    return {key: {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(p).items()} for key, p in space.items()}


def space_from_dict(values: dict[str, dict[str, Any]]) -> Space:
    return {
        key: replace(Param(key), **{k: (tuple(v) if k == "choices" and v is not None else v) for k, v in p.items()})
        for key, p in values.items()
    }
