"""Predict many images: files, folders and globs decoded batch by batch in threads, rows of top-k classes,
written as CSV or JSON atomically (a failed or killed run leaves no half-written file)."""

from __future__ import annotations

import csv
import glob
import io
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from .data.imagefolder import IMAGE_SUFFIXES, UNREADABLE, load_image
from .errors import ConfigError
from .evaluate.trained import TrainedModel
from .evaluate.tta import tta_model
from .files import dumps_json
from .registry import Registry
from .train.checkpoint import atomic_write_bytes

log = logging.getLogger("convcoach")

Row = dict[str, Any]  # file, prediction, probability, top [{class, probability}], error (None when read)
# name -> writer(rows, text handle, top_k, info) -> counts; `--format` and the --out suffix pick one
PREDICTION_FORMATS: Registry[Callable[[Iterable[Row], IO[str], int, dict[str, Any]], dict[str, int]]] = Registry(
    "prediction format"
)


def expand_paths(patterns: Iterable[str | Path]) -> list[Path]:
    """Image files of each argument in order: a file as given, a folder's images recursively (sorted, hidden
    entries left out), a glob pattern's matches (`**` recursive, folders expanded); duplicates once."""
    found: list[Path] = []
    for pattern in patterns:
        text = str(pattern)
        if glob.has_magic(text):
            matches = [Path(match) for match in sorted(glob.glob(text, recursive=True))]
            if not matches:
                raise ConfigError(f"no files match '{text}'")
            images = [f for match in matches for f in (_folder_images(match) if match.is_dir() else [match])]
            images = [f for f in images if f.suffix.lower() in IMAGE_SUFFIXES]
            if not images:
                count = f"{len(matches)} path{'s' if len(matches) != 1 else ''}"
                raise ConfigError(f"'{text}' matches {count} but no image files")
            found += images
        elif Path(text).is_dir():
            images = _folder_images(Path(text))
            if not images:
                raise ConfigError(f"no images in folder {text} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
            found += images
        elif Path(text).is_file():
            found.append(Path(text))  # named explicitly: read whatever its suffix
        else:
            raise ConfigError(f"image not found: {text}")
    return list(dict.fromkeys(found))


def _folder_images(root: Path) -> list[Path]:
    hidden = lambda path: any(part.startswith(".") for part in path.relative_to(root).parts)  # noqa: E731
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not hidden(p))


def predict_paths(
    trained: TrainedModel,
    paths: Iterable[str | Path],
    batch_size: int = 256,
    top_k: int = 3,
    tta: str | None = None,
    strict: bool = False,
    workers: int | None = None,
    progress: bool = False,
) -> Iterator[Row]:
    """One row per image of `paths` (files, folders, globs: `expand_paths`), in order, computed batch by
    batch: only two batches of decoded images are ever in memory. An unreadable image is a row with its
    `error` (and a warning), or with `strict` a ConfigError naming it. `tta` as eval's ('flip', '10crop', ...)."""
    files = expand_paths(paths)  # now, so a bad argument fails before the caller opens its output
    model = tta_model(trained, tta) if tta else trained.model
    return _rows(trained, model, files, batch_size, min(top_k, len(trained.classes)), strict, workers, progress)


def _rows(
    trained: TrainedModel,
    model: torch.nn.Module,
    files: list[Path],
    batch_size: int,
    top_k: int,
    strict: bool,
    workers: int | None,
    progress: bool,
) -> Iterator[Row]:
    channels, height, width = trained.in_shape
    device = next(trained.model.parameters()).device
    batches = [files[start : start + batch_size] for start in range(0, len(files), batch_size)]

    def decode(path: Path) -> np.ndarray | str:
        try:
            return load_image(path, channels, (height, width))
        except UNREADABLE as exc:
            if strict:
                raise ConfigError(f"{path}: unreadable image ({exc})") from None
            log.warning("skipping unreadable image %s (%s)", path, exc)
            return f"{type(exc).__name__}: {exc}"

    # PIL decodes and resizes with the GIL released: threads overlap the next batch's reading with this one's model
    with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool, _progress_bar(len(files), progress) as bar:
        pending: list[Future] = [pool.submit(decode, path) for path in batches[0]] if batches else []
        try:
            for index, batch in enumerate(batches):
                decoded = [future.result() for future in pending]
                pending = [pool.submit(decode, path) for path in batches[index + 1]] if index + 1 < len(batches) else []
                yield from _predict_batch(trained, model, device, batch, decoded, top_k)
                if bar is not None:
                    bar.advance(bar.task_ids[0], len(batch))
        finally:
            for future in pending:  # stopped early (an error, a closed generator): drop the next batch's reads
                future.cancel()


@torch.no_grad()
def _predict_batch(
    trained: TrainedModel,
    model: torch.nn.Module,
    device: torch.device,
    batch: list[Path],
    decoded: list[np.ndarray | str],
    top_k: int,
) -> Iterator[Row]:
    images = [torch.from_numpy(item) for item in decoded if not isinstance(item, str)]
    if images:
        # the TTA wrapper returns log of the mean softmax, so softmax gives the averaged probabilities
        probabilities = model(trained.normalizer(torch.stack(images).to(device))).float().softmax(dim=1).cpu()
        top = probabilities.topk(top_k, dim=1)
        ranked = iter(zip(top.values.tolist(), top.indices.tolist()))
    for path, item in zip(batch, decoded):
        if isinstance(item, str):
            yield {"file": str(path), "prediction": None, "probability": None, "top": [], "error": item}
            continue
        values, indices = next(ranked)
        yield {
            "file": str(path),
            "prediction": trained.classes[indices[0]],
            "probability": values[0],
            "top": [{"class": trained.classes[i], "probability": p} for p, i in zip(values, indices)],
            "error": None,
        }


def _progress_bar(total: int, show: bool) -> Any:
    """A rich progress bar on stderr (images done, rate, time left), or nothing."""
    if not show:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("predicting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("images"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    bar.add_task("predict", total=total)
    return bar


def format_of(out: str | Path, format: str | None = None) -> str:
    """`format` when given (checked), else the suffix of `out` (.csv or .json)."""
    name = (format or Path(out).suffix.lstrip(".")).lower()
    if not format and name not in PREDICTION_FORMATS:
        raise ConfigError(f"{out}: give a file name ending in .csv or .json, or --format csv|json")
    PREDICTION_FORMATS.get(name)  # an unknown --format: the error lists the known ones
    return name


def write_predictions(
    rows: Iterable[Row], out: str | Path, format: str | None = None, top_k: int = 3, info: dict[str, Any] | None = None
) -> dict[str, int]:
    """Stream `rows` into `out` (CSV or JSON, from `format` or the suffix) through a temporary file renamed
    at the end: an error midway (e.g. --strict on a corrupt image) leaves no file. Returns the counts
    {'predicted', 'skipped'}. `info` (checkpoint, tta...) heads the JSON; CSV has `top_k` class columns."""
    writer = PREDICTION_FORMATS.get(format_of(out, format))
    out = Path(out)
    created = not out.parent.exists()
    counts: dict[str, int] = {}

    def write(handle: IO[bytes]) -> None:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        counts.update(writer(rows, text, top_k, info or {}))
        text.flush()
        text.detach()  # atomic_write_bytes still fsyncs and closes the handle

    try:
        atomic_write_bytes(out, write)
        mask = os.umask(0)  # mkstemp made the file private: give it the permissions open() would have
        os.umask(mask)
        os.chmod(out, 0o666 & ~mask)
    except BaseException:
        if created and out.parent.is_dir() and not any(out.parent.iterdir()):
            out.parent.rmdir()  # the folder made for the file that was not written
        raise
    return counts


def _count(counts: dict[str, int], row: Row) -> None:
    counts["skipped" if row["error"] else "predicted"] += 1


@PREDICTION_FORMATS.register("csv")
def write_csv(rows: Iterable[Row], handle: IO[str], top_k: int, info: dict[str, Any]) -> dict[str, int]:
    """file, prediction, probability, top1_class, top1_probability ... topK_probability, error."""
    ranks = [name for k in range(1, top_k + 1) for name in (f"top{k}_class", f"top{k}_probability")]
    table = csv.writer(handle)
    table.writerow(["file", "prediction", "probability", *ranks, "error"])
    counts = {"predicted": 0, "skipped": 0}
    for row in rows:
        _count(counts, row)
        cells = [value for t in row["top"] for value in (t["class"], t["probability"])]
        cells += [""] * (len(ranks) - len(cells))
        table.writerow([row["file"], row["prediction"] or "", _blank(row["probability"]), *cells, row["error"] or ""])
    return counts


def _blank(value: float | None) -> float | str:
    return "" if value is None else value


@PREDICTION_FORMATS.register("json")
def write_json_rows(rows: Iterable[Row], handle: IO[str], top_k: int, info: dict[str, Any]) -> dict[str, int]:
    """{command, ...info, top_k, predictions: [rows], skipped: [{file, error}], counts}, one row a line."""
    handle.write("{\n" + "".join(f"  {json.dumps(k)}: {dumps_json(v)},\n" for k, v in info.items()))
    handle.write(f'  "top_k": {top_k},\n  "predictions": [')
    counts, skipped = {"predicted": 0, "skipped": 0}, []
    for index, row in enumerate(rows):
        _count(counts, row)
        if row["error"]:
            skipped.append({"file": row["file"], "error": row["error"]})
        handle.write(("," if index else "") + "\n    " + dumps_json(row))
    handle.write(f'\n  ],\n  "skipped": {dumps_json(skipped)},\n  "counts": {dumps_json(counts)}\n}}\n')
    return counts
