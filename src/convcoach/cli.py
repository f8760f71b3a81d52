"""The `convcoach` command: train, eval and predict, plus every command a package registers in its cli.py
(found by `load_commands`, no list to edit); user mistakes exit 2 with one line."""

from __future__ import annotations

import argparse
import errno
import importlib.util
import logging
import pkgutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .argtypes import at_least
from .atomic import DISK_FULL, write_error
from .commands import COMMANDS, add_config_flags, command, config_from_args, ordered_commands
from .completion import SHELLS, completion_script
from .errors import ConfigError
from .run_dirs import make_output_dir, output_dir, prepare_out_file

__all__ = ["COMMANDS", "build_parser", "command", "config_from_args", "load_commands", "main"]

# what the machine, not the program, got wrong while writing: reported in one line (exit 2)
ENVIRONMENT_ERRNOS = (*DISK_FULL, errno.EACCES, errno.EPERM, errno.EROFS)
COMMAND_MODULES = ("export",)  # top-level modules that register a command (a package's are in its cli.py)


def load_commands() -> list[str]:
    """Import each subpackage's cli.py (its @command registers its subcommands) and COMMAND_MODULES;
    a package without a cli.py is not imported here. Returns the modules imported."""
    package = sys.modules[__package__]
    names = [f"{__package__}.{name}" for name in COMMAND_MODULES]
    for info in pkgutil.iter_modules(package.__path__):
        spec = importlib.util.find_spec(f"{__package__}.{info.name}") if info.ispkg else None
        if spec and any(sub.name == "cli" for sub in pkgutil.iter_modules(spec.submodule_search_locations)):
            names.append(f"{__package__}.{info.name}.cli")
    for name in names:
        __import__(name)  # not importlib.import_module: `python -X importtime` lists only what __import__ loads
    return names


# ----- train -----
def _train_args(parser: argparse.ArgumentParser) -> None:
    add_config_flags(parser)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved options, the data, the model (layers, parameters, FLOPs per image) and the plan, "
        "then exit: nothing is trained or written",
    )


@command("train", "train a model (flags and/or --config FILE.yaml)", _train_args, order=10)
def run_train(args: argparse.Namespace) -> int:
    from .train.distributed import launched_by_torchrun
    from .train.loop import Trainer

    config = config_from_args(args)
    if args.dry_run:
        from .train.dry_run import describe_run

        print(describe_run(config.validate()))
        return 0
    if config.nproc > 1 and not launched_by_torchrun():
        return _launch_torchrun(config.nproc, args.argv)
    trainer = Trainer(config)
    summary = trainer.fit()
    if not trainer.dist.is_main:
        return 0
    from .coach.cli import print_train_diagnosis
    from .evaluate.tta import accuracy_with_tta

    if summary["status"] == "diverged":
        print(f"convcoach: training diverged: {summary['stop_message']}", file=sys.stderr)
        print_train_diagnosis(summary)
        return 1
    print(f"test accuracy: {accuracy_with_tta(summary)}  (run: {summary['run_dir']}, {summary['train_seconds']:.0f}s)")
    print_train_diagnosis(summary)
    return 0


def _launch_torchrun(nproc: int, argv: list[str]) -> int:
    """Re-run this very command under torchrun (one machine, `nproc` processes)."""
    import subprocess

    from .train.distributed import torchrun_command

    clean, skip = [], False
    for item in argv:  # drop --nproc N / --nproc=N so the children train instead of launching
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            clean.append(item)
    return subprocess.run(torchrun_command(nproc, clean)).returncode


# ----- eval -----
def _eval_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="best.pt, last.pt or a run directory")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda[:N]")
    parser.add_argument("--data", help="evaluate on another dataset with the same classes")
    parser.add_argument("--data-dir")
    parser.add_argument("--split", default="test", choices=["test", "val", "train"])
    parser.add_argument("--batch-size", type=at_least(1), default=512)
    parser.add_argument("--top-k", type=at_least(1), default=5, help="also report top-K accuracy (default 5)")
    parser.add_argument(
        "--fuse-bn", action="store_true", help="fold each BatchNorm into the conv/linear layer before it"
    )
    parser.add_argument(
        "--tta", help="test-time augmentation: flip | 10crop[:PAD] | multiscale[:S1:S2...] | random[:N]"
    )
    parser.add_argument("--out", help="output directory (default runs/eval-<timestamp>)")


@command(
    "eval",
    "accuracy, top-k, per-class precision/recall, confusion matrix, calibration and confident mistakes of a checkpoint",
    _eval_args,
    order=20,
)
def run_eval(args: argparse.Namespace) -> int:
    from .evaluate.outputs import write_evaluation
    from .files import write_json
    from .infer import evaluate_split, load_split, load_trained
    from .precision import resolve_device

    if args.tta:
        from .evaluate.tta import parse_tta

        parse_tta(args.tta)  # a bad spec fails before any data is loaded
    out = output_dir(args.out, "eval-")  # a bad --out fails before the evaluation, not after it
    trained = load_trained(args.checkpoint, resolve_device(args.device))
    if args.fuse_bn:
        from .models.fuse import fuse_bn

        trained.model = fuse_bn(trained.model)
    split = load_split(trained, args.data, args.data_dir, args.split)
    result = evaluate_split(trained, split, args.batch_size, args.tta)
    out = make_output_dir(out, args.out)
    summary = {
        "command": "eval",
        "checkpoint": str(args.checkpoint),
        "split": args.split,
        "fused_bn": args.fuse_bn,
        **result.summary(trained.classes),
    }
    if args.tta:
        plain = evaluate_split(trained, split, args.batch_size)
        summary.update(tta=args.tta, accuracy_without_tta=plain.accuracy, tta_gain=result.accuracy - plain.accuracy)
        print(f"{args.split} accuracy without test-time augmentation: {plain.accuracy * 100:.2f}%; with {args.tta}:")
    summary.update(
        write_evaluation(
            result.probabilities,
            result.labels,
            trained.classes,
            split,
            out,
            f"Evaluation of {args.checkpoint}",
            args.top_k,
            args.split,
        )
    )
    write_json(out / "summary.json", summary)
    print(f"{args.split} accuracy: {result.accuracy * 100:.2f}%")
    top_k = ", ".join(f"top-{k} {v * 100:.2f}%" for k, v in summary["top_k_accuracy"].items())
    print(
        f"{top_k}; expected calibration error {summary['expected_calibration_error'] * 100:.2f}%  "
        f"(figures and report.html in {out})"
    )
    for name, acc in summary["per_class_accuracy"].items():
        print(f"  {name:>16s}  {acc * 100:6.2f}%")
    return 0


# ----- predict -----
def _predict_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda[:N]")
    parser.add_argument(
        "images",
        nargs="+",
        metavar="PATH",
        help="image files, folders (their images, recursively) and glob patterns (quoted: 'photos/**/*.jpg')",
    )
    parser.add_argument("--top-k", type=at_least(1), default=3)
    parser.add_argument(
        "--out",
        help="predictions.csv or predictions.json (one row per image), or a directory for summary.json "
        "with the rows also printed (default runs/predict-<timestamp>)",
    )
    parser.add_argument("--format", help="csv | json (default: from the --out suffix)")
    parser.add_argument("--batch-size", type=at_least(1), default=256, help="images decoded and predicted at once")
    parser.add_argument("--workers", type=at_least(1), help="threads decoding images (default: cores, at most 8)")
    parser.add_argument(
        "--tta", help="test-time augmentation: flip | 10crop[:PAD] | multiscale[:S1:S2...] | random[:N]"
    )
    parser.add_argument(
        "--strict", action="store_true", help="an unreadable image is an error (default: skipped with a warning)"
    )


@command("predict", "classify image files, folders or globs with a checkpoint, to CSV or JSON", _predict_args, order=50)
def run_predict(args: argparse.Namespace) -> int:
    from .infer import load_trained
    from .precision import resolve_device
    from .predict import PREDICTION_FORMATS, format_of, predict_paths, write_predictions

    if args.tta:
        from .evaluate.tta import parse_tta

        parse_tta(args.tta)  # a bad spec fails before the checkpoint is loaded
    if args.format:
        PREDICTION_FORMATS.get(args.format.lower())
    to_file = bool(args.format) or Path(args.out or "").suffix.lower().lstrip(".") in PREDICTION_FORMATS
    if to_file:
        out = Path(args.out or Path(output_dir(None, "predict-"), f"predictions.{args.format.lower()}"))
        format_of(out, args.format)
        prepare_out_file(out)
    elif args.out and Path(args.out).is_file():
        raise ConfigError(f"--out {args.out} is a file: give a name ending in .csv or .json, or a directory")
    else:  # a directory: summary.json, and a line per image on stdout (as before there were files)
        out = output_dir(args.out, "predict-") / "summary.json"
    trained = load_trained(args.checkpoint, resolve_device(args.device))
    rows = predict_paths(
        trained, args.images, args.batch_size, args.top_k, args.tta, args.strict, args.workers, sys.stderr.isatty()
    )
    info = {"command": "predict", "checkpoint": str(args.checkpoint), "tta": args.tta, "classes": trained.classes}
    top_k = min(args.top_k, len(trained.classes))
    out = out if args.out else make_output_dir(out.parent, None) / out.name
    counts = write_predictions(
        rows if to_file else _printed(rows), out, args.format if to_file else "json", top_k, info
    )
    skipped = f", {counts['skipped']} unreadable images skipped (listed in it)" if counts["skipped"] else ""
    print(f"{counts['predicted']} images predicted: {out}{skipped}")
    return 0


def _printed(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The rows unchanged, each printed as `file: class  (top-k with probabilities)` on its way."""
    for row in rows:
        top = ", ".join(f"{t['class']} {t['probability']:.3f}" for t in row["top"])
        print(f"{row['file']}: {row['prediction']}  ({top})" if top else f"{row['file']}: skipped ({row['error']})")
        yield row


# ----- completion -----
def _completion_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=SHELLS, help="the shell whose completion script to print")


@command("completion", "print the shell completion script for bash, zsh or fish (README: Set-up)", _completion_args)
def run_completion(args: argparse.Namespace) -> int:
    print(completion_script(build_parser(), args.shell), end="")
    return 0


class OneLineParser(argparse.ArgumentParser):
    """argparse's parser with its usage errors on one line, as every other convcoach error (exit 2);
    the usage itself is in --help. Subcommand parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (usage: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="convcoach",
        description="Train CNN image classifiers with a built-in coach.",
        allow_abbrev=False,  # `--epoch 3` is a typo to name, not --epochs (and scripts must not break on new flags)
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"convcoach {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    load_commands()
    for name, registered in ordered_commands():
        help_text = registered.help_text
        registered.add_arguments(sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("convcoach").setLevel(
        logging.DEBUG if args.verbose else logging.WARNING if getattr(args, "quiet", False) else logging.INFO
    )
    try:
        return COMMANDS[args.command].run(args)
    except ConfigError as exc:
        print(f"convcoach: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk or a read-only place met by a writer without its own check
        if exc.errno not in ENVIRONMENT_ERRNOS:
            raise
        print(f"convcoach: error: {write_error(Path(exc.filename or '.'), exc, None)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("convcoach: interrupted", file=sys.stderr)
        return 128 + getattr(exc, "signum", 2)  # 130 for SIGINT, 143 for SIGTERM
