"""Advice checked against the run's own options: the usual strength of each regularizer, those a run
has turned far past it (named by option, strongest first), and the filter that drops a fix already in
effect and keeps at most three, in the rules' ranked order."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_FIXES = 3
OPTION = re.compile(r"--([a-z][a-z0-9-]*)[ =]([^\s;)]+)")
UNTOUCHED = {"", None}


def in_effect(fix: str, options: dict[str, Any]) -> str | None:
    """The `--option value` of `fix` that the run already has (e.g. "--norm batch" on a BatchNorm run)."""
    for flag, value in OPTION.findall(fix):
        key = flag.replace("-", "_")
        if key in options and _same(options[key], value.rstrip(",.")):
            return f"--{flag} {value}"
    return None


def _same(current: Any, value: str) -> bool:
    if isinstance(current, list):
        return ",".join(str(v) for v in current) == value
    if isinstance(current, bool) or current is None:
        return False
    if isinstance(current, int | float):
        try:
            return float(value) == float(current)
        except ValueError:
            return False
    return str(current) == value


def advise(fixes: list[str], options: dict[str, Any]) -> list[str]:
    """The fixes not already in effect, without repeats, at most MAX_FIXES."""
    kept: list[str] = []
    for fix in fixes:
        if fix and fix not in kept and (not options or in_effect(fix, options) is None):
            kept.append(fix)
    return kept[:MAX_FIXES]


@dataclass
class Strong:
    """A regularizer set far past its usual strength."""

    flag: str  # e.g. --weight-decay
    value: float
    usual: float
    times: float  # value / usual
    kind: str = ""  # --reg's penalty: l1, l2, elastic

    @property
    def fix(self) -> str:
        return f"{self.flag} {self.kind}:{self.usual:g}" if self.kind else f"{self.flag} {self.usual:g}"

    def __str__(self) -> str:
        shown = f"{self.kind}:{self.value:g}" if self.kind else f"{self.value:g}"
        return f"{self.flag} {shown} is {self.times:.0f}x the usual {self.usual:g}"


USUAL_DECAY = {"adamw": 0.05}  # decoupled decay; every other optimizer: 5e-4 (the lectures' SGD setting)
USUAL_REG = {"l2": 1e-4, "l1": 1e-5, "elastic": 1e-5}  # lambda of the summed penalty
# option -> (usual value, multiple of it that counts as far past it); probabilities and alphas are capped
BOUNDED = {"dropout": (0.5, 1.6), "mixup": (0.4, 5), "cutmix": (1.0, 2.5), "label_smoothing": (0.1, 4)}
STRONG_TIMES = 20  # weight decay and penalties: this many times the usual is far past it


def strong_regularizers(options: dict[str, Any]) -> list[Strong]:
    """The regularizers the options set far past their usual strength, strongest (in multiples) first."""
    found = []
    decay = options.get("weight_decay") or 0.0
    usual = USUAL_DECAY.get(options.get("optimizer", ""), 5e-4)
    if decay >= STRONG_TIMES * usual:
        found.append(Strong("--weight-decay", decay, usual, decay / usual))
    reg = options.get("reg")
    if reg not in UNTOUCHED:
        kind, _, rest = str(reg).partition(":")
        strength = float(rest.split(":")[0]) if rest else 0.0
        if kind in USUAL_REG and strength >= STRONG_TIMES * USUAL_REG[kind]:
            found.append(Strong("--reg", strength, USUAL_REG[kind], strength / USUAL_REG[kind], kind))
    for key, (usual_value, times) in BOUNDED.items():
        value = options.get(key) or 0.0
        if value >= times * usual_value:
            found.append(Strong(f"--{key.replace('_', '-')}", value, usual_value, value / usual_value))
    return sorted(found, key=lambda s: -s.times)


# the options that make up for rare classes, as fixes (advise drops the one a run already has)
IMBALANCE_FIXES = [
    "--class-weights balanced (weighs the loss by n / (classes x count))",
    "--sampler balanced (draws every class equally often)",
]


def imbalance_compensation(options: dict[str, Any]) -> str | None:
    """The option, as its flag, by which the run already makes up for rare classes (None: it does not)."""
    weights = [str(weight).strip().lower() for weight in options.get("class_weights") or ["none"]]
    if weights != ["none"]:
        return f"--class-weights {','.join(weights)}"
    return "--sampler balanced" if options.get("sampler") == "balanced" else None
