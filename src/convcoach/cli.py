"""The `convcoach` command: subcommands registered by name; user mistakes exit 2 with one line."""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import TrainConfig, config_fields, from_dict, load_yaml, unwrap_optional
from .errors import ConfigError

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Command, str]] = {}


def command(name: str, help_text: str, add_arguments: Callable[[argparse.ArgumentParser], None]) -> Callable[[Command], Command]:
    def register(run: Command) -> Command:
        COMMANDS[name] = (add_arguments, run, help_text)
        return run

    return register


FLAG_HELP = {
    "data": "dataset name (fashion-mnist, mnist, cifar10, cifar100, digits), imagefolder:PATH, npz:PATH or a folder",
    "augment": "comma-separated ops, e.g. hflip,translate:2 ('none' for off)",
    "reg": "l1:LAMBDA | l2:LAMBDA | elastic:LAMBDA[:BETA]",
    "schedule": "constant | step:E1,E2[:gamma] | exp:GAMMA | cosine | linear | invsqrt | onecycle[:pct]",
    "init": "auto | normal:STD | xavier | xavier_uniform | kaiming | kaiming_uniform | orthogonal | zeros | constant:V | lsuv | default",
    "model_options": "builder-specific options, e.g. stem_pool=false,shortcut=identity",
}


def add_config_flags(parser: argparse.ArgumentParser, cls: type = TrainConfig, skip: tuple[str, ...] = ()) -> None:
    """One flag per config field; given flags override the YAML file (defaults are not applied here)."""
    parser.add_argument("--config", help="YAML file of options; flags override it")
    for name, annotation in config_fields(cls).items():
        if name in skip:
            continue
        flag = "--" + name.replace("_", "-")
        if unwrap_optional(annotation) is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=FLAG_HELP.get(name))
        else:
            parser.add_argument(flag, default=argparse.SUPPRESS, metavar=name.upper(), help=FLAG_HELP.get(name))


def config_from_args(args: argparse.Namespace, cls: type = TrainConfig) -> Any:
    values = load_yaml(args.config) if getattr(args, "config", None) else {}
    fields = config_fields(cls)
    values.update({k: v for k, v in vars(args).items() if k in fields})
    return from_dict(values, cls, source=args.config or "command line")


def default_out(prefix: str = "") -> str:
    return str(Path("runs") / (prefix + datetime.now().strftime("%Y%m%d-%H%M%S")))


# ----- train -----
@command("train", "train a model (flags and/or --config FILE.yaml)", add_config_flags)
def run_train(args: argparse.Namespace) -> int:
    from .train.distributed import launched_by_torchrun
    from .train.loop import Trainer

    config = config_from_args(args)
    if config.nproc > 1 and not launched_by_torchrun():
        return _launch_torchrun(config.nproc, args.argv)
    trainer = Trainer(config)
    summary = trainer.fit()
    if not trainer.dist.is_main:
        return 0
    if summary["status"] == "diverged":
        print(f"convcoach: training diverged: {summary['stop_message']}", file=sys.stderr)
        return 1
    print(f"test accuracy: {summary['test_accuracy'] * 100:.2f}%  (run: {summary['run_dir']}, {summary['train_seconds']:.0f}s)")
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
    parser.add_argument("--data", help="evaluate on another dataset with the same classes")
    parser.add_argument("--data-dir")
    parser.add_argument("--split", default="test", choices=["test", "val", "train"])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--out", help="output directory (default runs/eval-<timestamp>)")


@command("eval", "test accuracy and per-class accuracy of a checkpoint", _eval_args)
def run_eval(args: argparse.Namespace) -> int:
    from .infer import evaluate_trained, load_trained
    from .train.loop import write_json

    trained = load_trained(args.checkpoint)
    result = evaluate_trained(trained, args.data, args.data_dir, args.split, args.batch_size)
    out = Path(args.out or default_out("eval-"))
    out.mkdir(parents=True, exist_ok=True)
    summary = {"command": "eval", "checkpoint": str(args.checkpoint), "split": args.split, **result.summary(trained.classes)}
    write_json(out / "summary.json", summary)
    print(f"{args.split} accuracy: {result.accuracy * 100:.2f}%")
    for name, acc in summary["per_class_accuracy"].items():
        print(f"  {name:>16s}  {acc * 100:6.2f}%")
    return 0


# ----- predict -----
def _predict_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--out", help="output directory (default runs/predict-<timestamp>)")


@command("predict", "classify image files with a checkpoint", _predict_args)
def run_predict(args: argparse.Namespace) -> int:
    from .infer import load_trained, predict_files
    from .train.loop import write_json

    trained = load_trained(args.checkpoint)
    results = predict_files(trained, args.images, args.top_k)
    out = Path(args.out or default_out("predict-"))
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", {"command": "predict", "checkpoint": str(args.checkpoint), "predictions": results})
    for row in results:
        top = ", ".join(f"{t['class']} {t['probability']:.3f}" for t in row["top"])
        print(f"{row['file']}: {row['prediction']}  ({top})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convcoach", description="Train CNN image classifiers with a built-in coach.")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_arguments, _, help_text) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("convcoach").setLevel(logging.DEBUG if args.verbose else logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    try:
        return COMMANDS[args.command][1](args)
    except ConfigError as exc:
        print(f"convcoach: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("convcoach: interrupted", file=sys.stderr)
        return 130
