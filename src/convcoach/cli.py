"""The `convcoach` command: subcommands registered by name; user mistakes exit 2 with one line."""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import __version__
from .argtypes import at_least
from .config import TrainConfig, config_fields, field_docs, from_dict, load_yaml, unwrap_optional
from .errors import ConfigError

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Command, str]] = {}


def command(name: str, help_text: str, add_arguments: Callable[[argparse.ArgumentParser], None]) -> Callable[[Command], Command]:
    def register(run: Command) -> Command:
        COMMANDS[name] = (add_arguments, run, help_text)
        return run

    return register


def add_config_flags(parser: argparse.ArgumentParser, cls: type = TrainConfig, skip: tuple[str, ...] = ()) -> None:
    """One flag per config field; given flags override the YAML file (defaults are not applied here)."""
    parser.add_argument("--config", help="YAML file of options; flags override it")
    defaults, docs = cls(), field_docs(cls)
    for name, annotation in config_fields(cls).items():
        if name in skip:
            continue
        flag = "--" + name.replace("_", "-")
        default = getattr(defaults, name)
        shown = "none" if default is None else ",".join(map(str, default)) if isinstance(default, list) else default
        doc = docs.get(name, "")
        text = (doc if default is None and "none" in doc.lower() else f"{doc} (default: {shown})".lstrip()).replace("%", "%%")
        if unwrap_optional(annotation) is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=text)
        else:
            parser.add_argument(flag, default=argparse.SUPPRESS, metavar=name.upper(), help=text)


def config_from_args(args: argparse.Namespace, cls: type = TrainConfig) -> Any:
    values = load_yaml(args.config) if getattr(args, "config", None) else {}
    fields = config_fields(cls)
    values.update({k: v for k, v in vars(args).items() if k in fields})
    return from_dict(values, cls, source=args.config or "command line")


def default_out(prefix: str = "") -> str:
    from .files import default_run_dir

    return str(default_run_dir(prefix))


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
    from .coach.commands import print_train_diagnosis

    if summary["status"] == "diverged":
        print(f"convcoach: training diverged: {summary['stop_message']}", file=sys.stderr)
        print_train_diagnosis(summary)
        return 1
    print(f"test accuracy: {_with_tta(summary)}  (run: {summary['run_dir']}, {summary['train_seconds']:.0f}s)")
    print_train_diagnosis(summary)
    return 0


def _with_tta(summary: dict[str, Any]) -> str:
    """'93.44% with flip TTA (92.99% without)': `eval` without --tta reports the second figure."""
    if summary.get("tta") and summary.get("test_accuracy_without_tta") is not None:
        return f"{summary['test_accuracy'] * 100:.2f}% with {summary['tta']} TTA ({summary['test_accuracy_without_tta'] * 100:.2f}% without)"
    return f"{summary['test_accuracy'] * 100:.2f}%"


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
    parser.add_argument("--fuse-bn", action="store_true", help="fold each BatchNorm into the conv/linear layer before it")
    parser.add_argument("--tta", help="test-time augmentation: flip | 10crop[:PAD] | multiscale[:S1:S2...] | random[:N]")
    parser.add_argument("--out", help="output directory (default runs/eval-<timestamp>)")


@command("eval", "accuracy, top-k, per-class precision/recall, confusion matrix, calibration and confident mistakes of a checkpoint", _eval_args)
def run_eval(args: argparse.Namespace) -> int:
    from .evaluate.outputs import write_evaluation
    from .files import write_json
    from .infer import evaluate_split, load_split, load_trained
    from .precision import resolve_device

    if args.tta:
        from .evaluate.tta import parse_tta

        parse_tta(args.tta)  # a bad spec fails before any data is loaded
    trained = load_trained(args.checkpoint, resolve_device(args.device))
    if args.fuse_bn:
        from .models.fuse import fuse_bn

        trained.model = fuse_bn(trained.model)
    split = load_split(trained, args.data, args.data_dir, args.split)
    result = evaluate_split(trained, split, args.batch_size, args.tta)
    out = Path(args.out or default_out("eval-"))
    out.mkdir(parents=True, exist_ok=True)
    summary = {"command": "eval", "checkpoint": str(args.checkpoint), "split": args.split, "fused_bn": args.fuse_bn, **result.summary(trained.classes)}
    if args.tta:
        plain = evaluate_split(trained, split, args.batch_size)
        summary.update(tta=args.tta, accuracy_without_tta=plain.accuracy, tta_gain=result.accuracy - plain.accuracy)
        print(f"{args.split} accuracy without test-time augmentation: {plain.accuracy * 100:.2f}%; with {args.tta}:")
    summary.update(write_evaluation(result.probabilities, result.labels, trained.classes, split, out, f"Evaluation of {args.checkpoint}", args.top_k, args.split))
    write_json(out / "summary.json", summary)
    print(f"{args.split} accuracy: {result.accuracy * 100:.2f}%")
    top_k = ", ".join(f"top-{k} {v * 100:.2f}%" for k, v in summary["top_k_accuracy"].items())
    print(f"{top_k}; expected calibration error {summary['expected_calibration_error'] * 100:.2f}%  (figures and report.html in {out})")
    for name, acc in summary["per_class_accuracy"].items():
        print(f"  {name:>16s}  {acc * 100:6.2f}%")
    return 0


# ----- export and the augmentation gallery (export.py, data/gallery.py) -----
def _export_args(parser: argparse.ArgumentParser) -> None:
    from .export import add_export_flags

    add_export_flags(parser)


@command("export", "write an inference checkpoint, with --fuse-bn folding each BatchNorm into the layer before it", _export_args)
def run_export(args: argparse.Namespace) -> int:
    from .export import run_export as run

    return run(args)


def _gallery_args(parser: argparse.ArgumentParser) -> None:
    from .data.gallery import add_gallery_flags

    add_gallery_flags(parser)


@command("augment", "draw a grid of training images and augmented draws of them (PNG), to look before training", _gallery_args)
def run_gallery(args: argparse.Namespace) -> int:
    from .data.gallery import run_gallery as run

    return run(args)


# ----- predict -----
def _predict_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda[:N]")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--top-k", type=at_least(1), default=3)
    parser.add_argument("--out", help="output directory (default runs/predict-<timestamp>)")


@command("predict", "classify image files with a checkpoint", _predict_args)
def run_predict(args: argparse.Namespace) -> int:
    from .files import write_json
    from .infer import load_trained, predict_files
    from .precision import resolve_device

    trained = load_trained(args.checkpoint, resolve_device(args.device))
    results = predict_files(trained, args.images, args.top_k)
    out = Path(args.out or default_out("predict-"))
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", {"command": "predict", "checkpoint": str(args.checkpoint), "predictions": results})
    for row in results:
        top = ", ".join(f"{t['class']} {t['probability']:.3f}" for t in row["top"])
        print(f"{row['file']}: {row['prediction']}  ({top})")
    return 0


# ----- tune -----
def _tune_args(parser: argparse.ArgumentParser) -> None:
    from .tune.options import add_tune_flags

    add_config_flags(parser)
    add_tune_flags(parser)


@command("tune", "hyperparameter search: random, grid or TPE, coarse-to-fine stages, early abort (flags and/or --config)", _tune_args)
def run_tune(args: argparse.Namespace) -> int:
    from .tune.options import tune_inputs
    from .tune.study import tune

    base, space, options = tune_inputs(args)
    result = tune(base, space, options)
    print(f"tune directory: {result.out} (trials.csv, best.yaml, plots/, tune.json)")
    return 0 if result.best is not None else 1


# ----- transfer learning and the nearest-neighbour baseline (transfer/commands.py) -----
def _finetune_args(parser: argparse.ArgumentParser) -> None:
    from .transfer.commands import add_finetune_flags

    add_config_flags(parser)
    add_finetune_flags(parser)


@command("finetune", "fine-tune a pretrained checkpoint on new data: --strategy linear | top:K | full | stages | auto", _finetune_args)
def run_finetune(args: argparse.Namespace) -> int:
    from .transfer.commands import run_finetune as run

    return run(args, config_from_args(args))


def _features_args(parser: argparse.ArgumentParser) -> None:
    from .transfer.commands import add_features_flags

    add_features_flags(parser)


@command("features", "write a checkpoint's embeddings (a stage, penultimate or logits) of every split to .npz", _features_args)
def run_features(args: argparse.Namespace) -> int:
    from .transfer.commands import run_features as run

    return run(args)


def _knn_args(parser: argparse.ArgumentParser) -> None:
    from .transfer.commands import add_knn_flags

    add_knn_flags(parser)


@command("knn", "k-nearest-neighbour classifier (L1/L2) on raw pixels or a checkpoint's features; k chosen on validation", _knn_args)
def run_knn(args: argparse.Namespace) -> int:
    from .transfer.commands import run_knn as run

    return run(args, Path(args.out or default_out("knn-")))


# ----- inspection, run report and comparison (report/commands.py) -----
def _inspect_args(parser: argparse.ArgumentParser) -> None:
    from .report.commands import add_inspect_flags

    add_inspect_flags(parser)


@command("inspect", "look inside a trained net: filters, occlusion, top images per unit, noise, class visualization, saliency, dead ReLUs", _inspect_args)
def run_inspect(args: argparse.Namespace) -> int:
    from .report.commands import run_inspect as run

    return run(args)


def _report_args(parser: argparse.ArgumentParser) -> None:
    from .report.commands import add_report_flags

    add_report_flags(parser)


@command("report", "rebuild RUN_DIR/report.html, the self-contained HTML report of a run", _report_args)
def run_report(args: argparse.Namespace) -> int:
    from .report.commands import run_report as run

    return run(args)


def _compare_args(parser: argparse.ArgumentParser) -> None:
    from .report.commands import add_compare_flags

    add_compare_flags(parser)


@command("compare", "overlay the curves of several runs on one HTML page, with a table of their final figures", _compare_args)
def run_compare(args: argparse.Namespace) -> int:
    from .report.commands import run_compare as run

    return run(args)


# ----- the coach: checks before training, init statistics, diagnosis after (coach/commands.py) -----
def _check_args(parser: argparse.ArgumentParser) -> None:
    from .coach.commands import add_check_flags

    add_config_flags(parser)
    add_check_flags(parser)


@command("check", "sanity checks before training: initial loss, regularization, overfit 20 examples, LR sweep, gradients, activations, data", _check_args)
def run_check(args: argparse.Namespace) -> int:
    from .coach.commands import run_check as run

    config = config_from_args(args)
    return run(args, config, Path(config.out or default_out("check-")))


def _stats_args(parser: argparse.ArgumentParser) -> None:
    from .coach.commands import add_stats_flags

    add_config_flags(parser)
    add_stats_flags(parser)


@command("stats", "per-layer activation mean/std of a freshly initialized model on noise or data (the lectures' init experiment)", _stats_args)
def run_stats(args: argparse.Namespace) -> int:
    from .coach.commands import run_stats as run

    return run(args, config_from_args(args))


def _diagnose_args(parser: argparse.ArgumentParser) -> None:
    from .coach.commands import add_diagnose_flags

    add_diagnose_flags(parser)


@command("diagnose", "diagnose a finished run from its curves and monitors: under/overfitting, learning rate, dead units, ...", _diagnose_args)
def run_diagnose(args: argparse.Namespace) -> int:
    from .coach.commands import run_diagnose as run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convcoach", description="Train CNN image classifiers with a built-in coach.")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"convcoach {__version__}")
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
    except KeyboardInterrupt as exc:
        print("convcoach: interrupted", file=sys.stderr)
        return 128 + getattr(exc, "signum", 2)  # 130 for SIGINT, 143 for SIGTERM
