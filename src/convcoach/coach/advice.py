"""Advice checked against the run's own options: the usual strength of each regularizer, those a run
has turned far past it (named by option, strongest first), and the filter that drops a fix already in
effect and keeps at most three, in the rules' ranked order."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..data.augment import AUGMENTS
from ..errors import ConfigError
from ..registry import parse_spec
from ..train.class_weights import parse_class_weights

# loss name -> (expected initial loss for C classes, how it is written): an untrained net that scores
# every class alike (the initial_loss check, and the diagnosis's first-loss rule)
EXPECTED_INITIAL_LOSS: dict[str, tuple[Callable[[int], float], str]] = {
    "cross_entropy": (math.log, "ln({C})"),
    "softmax": (math.log, "ln({C})"),
    "kl": (math.log, "ln({C})"),
    "svm": (lambda c: c - 1.0, "{C} - 1"),  # every margin is ~1 when all scores are ~0
    "hinge": (lambda c: c - 1.0, "{C} - 1"),
}

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
    below: bool = False  # smaller is stronger (--max-norm): `times` is usual / value
    replace: str | None = None  # the fix when it is not the flag at its usual value (one --augment op)
    op: str = ""  # the --augment op it reads

    @property
    def fix(self) -> str:
        if self.replace:
            return self.replace
        return f"{self.flag} {self.kind}:{self.usual:g}" if self.kind else f"{self.flag} {self.usual:g}"

    def __str__(self) -> str:
        flag = f"--augment {self.op}" if self.op else self.flag
        shown = f"{self.kind}:{self.value:g}" if self.kind else f"{self.value:g}"
        relation = "smaller than the" if self.below else "the"
        return f"{flag} {shown} is {self.times:.0f}x {relation} usual {self.usual:g}"


USUAL_DECAY = {"adamw": 0.05}  # decoupled decay; every other optimizer: 5e-4 (the lectures' SGD setting)
USUAL_REG = {"l2": 1e-4, "l1": 1e-5, "elastic": 1e-5}  # lambda of the summed penalty
# option -> (usual value, multiple of it that counts as far past it); probabilities and alphas are capped.
# DropConnect 0.5 (Wan et al. 2013); stochastic depth 0.2 for the last block of a short ResNet (Huang et
# al. 2016 use 0.5 at 110 layers); input noise 0.1 of the normalized pixels' std of 1.
BOUNDED = {
    "dropout": (0.5, 1.6),
    "mixup": (0.4, 5),
    "cutmix": (1.0, 2.5),
    "label_smoothing": (0.1, 4),
    "dropconnect": (0.5, 1.6),
    "stochastic_depth": (0.2, 2.5),
    "input_noise": (0.1, 10),
    "sam": (0.05, 10),  # Foret et al. 2021: rho 0.05 (CIFAR-10); 10x moves the weights far off before each gradient
}
STRONG_TIMES = 20  # weight decay and penalties: this many times the usual is far past it
USUAL_MAX_NORM = 3.0  # Srivastava et al. 2014: c of 3-4; a cap STRONG_TIMES smaller holds every unit down
CUTOUT_SHARE = (0.5, 1.6)  # DeVries & Taylor 2017: a square half the image's side (16 px at 32); 1.6x is 80%


def strong_regularizers(options: dict[str, Any], side: int | None = None) -> list[Strong]:
    """The regularizers the options set far past their usual strength, strongest (in multiples) first;
    `side` is the images' side in pixels (cutout's usual square is half of it; 28 when not known)."""
    found = []
    side = side or options.get("image_size") or 28
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
    cutout = options.get("cutout") or 0
    usual = usual_cutout(side)
    if cutout and cutout >= CUTOUT_SHARE[1] * usual:
        found.append(Strong("--cutout", cutout, usual, cutout / usual))
    cap = options.get("max_norm")
    if cap and cap * STRONG_TIMES <= USUAL_MAX_NORM:  # smaller is stronger
        found.append(Strong("--max-norm", cap, USUAL_MAX_NORM, USUAL_MAX_NORM / cap, below=True))
    found += strong_augmentation(options, side)
    return sorted(found, key=lambda s: -s.times)


# --augment op (and aliases) -> (argument index, usual value, multiple that is far past it, smaller is stronger);
# the usual values are the ops' defaults (rotate 10 degrees, noise 0.1, elastic 2 px, randaugment magnitude 9)
AUGMENT_STRENGTH: dict[str, tuple[int, float, float, bool]] = {
    "rotate": (0, 10, 4.5, False),
    "shear": (0, 10, 4.5, False),
    "affine": (0, 10, 4.5, False),
    "scale": (0, 0.1, 5, False),
    "stretch": (0, 0.1, 5, False),
    "noise": (0, 0.1, 10, False),
    "elastic": (0, 2, 4, False),
    "jitter": (0, 0.4, 2.25, False),
    "brightness": (0, 0.4, 2.25, False),
    "contrast": (0, 0.4, 2.25, False),
    "randaugment": (1, 9, 2.9, False),
    "resized_crop": (0, 0.35, 5, True),
}


def usual_cutout(side: int) -> int:
    """Cutout's usual square: half the image's side (DeVries & Taylor 2017: 16 px at 32)."""
    return round(CUTOUT_SHARE[0] * side)


def _canonical(name: str) -> str | None:
    """The name an --augment op is measured under, for the op or any alias of it (AUGMENTS knows them)."""
    if name not in AUGMENTS:
        return None
    builder = AUGMENTS.get(name)
    return next((key for key in (*AUGMENT_STRENGTH, "translate", "cutout") if AUGMENTS.get(key) is builder), None)


def _limits(op: str, side: int) -> tuple[int, float, float, bool] | None:
    """AUGMENT_STRENGTH's entry for an op, with translate (usual an eighth of the side, far past at a
    third) and cutout measured by the image's side."""
    if op == "translate":
        usual = max(2.0, round(side / 8))
        return (0, usual, max(2.0, side / 3) / usual, False)
    if op == "cutout":
        return (0, usual_cutout(side), CUTOUT_SHARE[1], False)
    return AUGMENT_STRENGTH.get(op)


def strong_augmentation(options: dict[str, Any], side: int) -> list[Strong]:
    """The --augment ops set far past their usual strength; translations and cutout by the image's side
    (a shift of a third of it, a square of 80% of it)."""
    specs = [str(spec) for spec in options.get("augment") or []]
    found = []
    for index, spec in enumerate(specs):
        name, args = parse_spec(spec)
        op = _canonical(name)
        limits = _limits(op, side) if op else None
        if limits is None or len(args) <= limits[0]:
            continue
        position, usual, times, below = limits
        try:
            value = float(args[position])
        except ValueError:
            continue
        if value <= 0 or (value * times > usual if below else value < times * usual):
            continue
        usual_args = [*args[:position], f"{usual:g}", *args[position + 1 :]]
        fixed = [*specs[:index], ":".join([spec.split(":")[0], *usual_args]), *specs[index + 1 :]]
        multiple = usual / value if below else value / usual
        found.append(
            Strong("--augment", value, usual, multiple, below=below, replace=f"--augment {','.join(fixed)}", op=op)
        )
    return found


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


SKEWED_WEIGHTS = 10  # one class's share of the loss this many times another's


@dataclass
class WeightSkew:
    """Explicit --class-weights that give one class far more of the loss than another."""

    heavy: str
    light: str
    ratio: float  # inf where a class has weight 0

    def __str__(self) -> str:
        if math.isinf(self.ratio):
            return f"--class-weights gives {self.light} no share of the loss"
        return f"--class-weights gives {self.heavy} {self.ratio:.0f}x the loss share of {self.light}"


def weight_skew(options: dict[str, Any], counts: list[int] | None, names: list[str]) -> WeightSkew | None:
    """The heaviest and lightest class by loss share (weight x training count) under explicit
    --class-weights, when one is SKEWED_WEIGHTS times the other: weights that undo an imbalance
    (inverse frequency) give every class the same share and are not skewed."""
    try:
        weights = parse_class_weights([str(v) for v in options.get("class_weights") or ["none"]])
    except ConfigError:
        return None
    if isinstance(weights, str):
        return None
    counts = counts or [1] * len(weights)
    if len(counts) != len(weights) or len(names) != len(weights):
        return None
    shares = [w * n for w, n in zip(weights, counts)]
    heavy = max(range(len(shares)), key=shares.__getitem__)
    light = min(range(len(shares)), key=shares.__getitem__)
    ratio = shares[heavy] / shares[light] if shares[light] > 0 else math.inf
    return WeightSkew(names[heavy], names[light], ratio) if ratio >= SKEWED_WEIGHTS else None


RARE = 0.2  # a class with fewer than this share of the median class count is rare


def rare_classes(counts: list[int]) -> list[int]:
    """The indices of the classes with fewer than RARE of the median class's training images."""
    if not counts:
        return []
    median = statistics.median(counts)
    return [i for i, n in enumerate(counts) if n < RARE * median]
