"""`convcoach inspect`: every inspection of a trained model as a Finding (PNG + numbers), written as
PNG files, inspect.json and a self-contained inspect.html."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..data import Normalizer, Split
from ..data.imagefolder import read_image
from ..data.samples import examples, split_images
from ..errors import ConfigError
from ..files import loads_json, write_json
from ..render import figures as plots
from ..render.html import Page
from .dead_relu import dead_relu_report
from .filters import filter_tiles, first_layer_filters
from .layer_lookup import default_feature_layer, resolve_layer
from .max_activation import top_activating, unit_activations
from .noise import class_visualizations, noise_predictions
from .occlusion import occlusion_maps
from .saliency import saliency_maps


@dataclass
class InspectOptions:
    """What `convcoach inspect` looks at; every field is a CLI flag."""

    data: str | None = None  # another dataset with the same classes (default: the model's)
    data_dir: str | None = None
    split: str = "test"
    images: list[str] = field(default_factory=list)  # image files for occlusion and saliency
    examples: int = 4  # dataset images for occlusion and saliency when no files are given
    layer: str | None = None  # for the maximally activating images (default: after the last conv)
    units: list[int] | None = None  # default: the first 8 units of the layer
    top: int = 8
    patch: int | None = None  # occlusion patch size (default: a quarter of the image side)
    stride: int | None = None
    samples: int = 1000  # dataset images scanned for max activation and dead ReLUs
    noise: int = 256  # random images fed to the net
    steps: int = 100  # gradient-ascent steps per class visualization
    seed: int = 0


@dataclass
class Finding:
    """One inspection result: a picture, a caption and the numbers behind it."""

    key: str
    title: str
    caption: str
    png: bytes
    data: dict[str, Any] = field(default_factory=dict)


# ----- one function per inspection -----
def filters_finding(model: nn.Module, in_shape: tuple[int, int, int]) -> Finding:
    weights = first_layer_filters(model, in_shape)
    tiles = filter_tiles(weights)
    if tiles.shape[1] < 16:  # upscale tiny 3x3 kernels so they are visible
        factor = 16 // tiles.shape[1]
        tiles = tiles.repeat(factor, axis=1).repeat(factor, axis=2)
    columns = 8 if len(tiles) > 8 else len(tiles)
    png = plots.image_grid(tiles, columns=columns, tile_inches=0.8, title=f"{len(tiles)} first-layer filters")
    caption = (
        f"{len(weights)} filters of shape {tuple(weights.shape[1:])}; grey is 0, each filter scaled to its own range "
        "(smooth, structured filters mean a healthy first layer; "
        "noise means too little training or too high a learning rate)."
    )
    return Finding(
        "filters", "First-layer filters", caption, png, {"count": len(weights), "shape": list(weights.shape[1:])}
    )


def occlusion_finding(
    model: nn.Module,
    normalizer: Normalizer,
    images: torch.Tensor,
    targets: list[int],
    captions: list[str],
    patch: int | None = None,
    stride: int | None = None,
) -> Finding:
    """Occlusion maps for uint8 (N, C, H, W) images and the class whose probability is tracked."""
    results = occlusion_maps(model, normalizer(images.to(next(model.parameters()).device)), targets, patch, stride)
    maps = [r.drop.numpy() for r in results]
    titles = [f"{c}  p={r.base_probability:.2f}" for c, r in zip(captions, results)]
    png = plots.heatmap_rows(plots.to_display(images), maps, titles, "drop in p(class)", signed=True)
    rows = []
    for caption, r in zip(captions, results):
        peak = int(r.drop.argmax())
        rows.append(
            {
                "image": caption,
                "probability": r.base_probability,
                "max_drop": float(r.drop.max()),
                "max_drop_at (row, col)": divmod(peak, r.drop.shape[1]),
            }
        )
    caption = (
        f"A {results[0].patch}x{results[0].patch} patch of the mean colour, moved by {results[0].stride} px; "
        "red: hiding this region lowers the probability of the class (the net looks there)."
    )
    return Finding(
        "occlusion",
        "Occlusion sensitivity",
        caption,
        png,
        {"patch": results[0].patch, "stride": results[0].stride, "examples": rows},
    )


def saliency_finding(
    model: nn.Module, normalizer: Normalizer, images: torch.Tensor, targets: list[int], captions: list[str]
) -> Finding:
    maps = saliency_maps(model, normalizer(images.to(next(model.parameters()).device)), torch.tensor(targets))
    png = plots.heatmap_rows(
        plots.to_display(images), [m.numpy() for m in maps], captions, "|d score / d pixel|", cmap="hot"
    )
    caption = (
        "Gradient of the class score with respect to each pixel (max over channels): "
        "the pixels that change the score most."
    )
    return Finding("saliency", "Gradient saliency", caption, png, {"max": [float(m.max()) for m in maps]})


def max_activation_finding(
    model: nn.Module,
    split: Split,
    normalizer: Normalizer,
    classes: list[str],
    layer_name: str | None,
    units: list[int] | None,
    top: int,
    samples: int,
    seed: int,
) -> Finding:
    layer_name = layer_name or default_feature_layer(model)
    layer = resolve_layer(model, layer_name)
    sample = _sample_indices(len(split), samples, seed)
    activations = unit_activations(model, layer, _batches(split, sample, normalizer, model))
    units = units if units is not None else list(range(min(8, activations.shape[1])))
    values, indices = top_activating(activations, units, top)
    picked = [sample[i] for i in indices.flatten().tolist()]
    tiles = plots.to_display(split_images(split, picked))
    titles = [f"{classes[int(split.labels[i])]} {v:.2f}" for i, v in zip(picked, values.flatten().tolist())]
    png = plots.image_grid(
        tiles,
        columns=indices.shape[1],
        titles=titles,
        row_labels=[f"unit {u}" for u in units],
        title=f"layer {layer_name}",
    )
    data = {
        "layer": layer_name,
        "units": units,
        "samples": len(sample),
        "top": {
            str(u): [{"index": sample[i], "activation": v} for i, v in zip(row_i.tolist(), row_v.tolist())]
            for u, row_i, row_v in zip(units, indices, values)
        },
    }
    caption = (
        f"For each unit of layer {layer_name}, the {indices.shape[1]} images (of {len(sample)} from the data) "
        "with the highest peak activation, labelled with their class and activation."
    )
    return Finding("max_activation", "Images that most activate a unit", caption, png, data)


def noise_finding(
    model: nn.Module,
    normalizer: Normalizer,
    in_shape: tuple[int, int, int],
    classes: list[str],
    count: int,
    steps: int,
    seed: int,
) -> list[Finding]:
    report = noise_predictions(model, normalizer, in_shape, count, seed)
    bars = plots.bar_plot(
        classes,
        {"predicted share": report.class_fraction, "mean probability": report.mean_probability},
        f"{count} uniform-noise images",
        "fraction",
    )
    caption = (
        f"Mean confidence on noise {report.mean_confidence:.2f} "
        f"(1/{len(classes)} = {1 / len(classes):.2f} would be honest uncertainty); "
        "a class that takes most of the noise is the net's default guess."
    )
    noise = Finding(
        "noise",
        "Random noise into the net",
        caption,
        bars,
        {"class_fraction": dict(zip(classes, report.class_fraction)), "mean_confidence": report.mean_confidence},
    )
    shown = list(range(min(len(classes), 10)))
    pictures, probabilities = class_visualizations(model, normalizer, in_shape, shown, steps=steps, seed=seed)
    tiles = plots.to_display(pictures)
    if tiles.shape[1] < 48:
        factor = max(1, 48 // tiles.shape[1])
        tiles = tiles.repeat(factor, axis=1).repeat(factor, axis=2)
    png = plots.image_grid(
        tiles,
        columns=min(5, len(shown)),
        titles=[f"{classes[t]} p={p:.2f}" for t, p in zip(shown, probabilities)],
        tile_inches=1.2,
    )
    caption = (
        f"Gradient ascent on the input from noise ({steps} Adam steps on score - 0.01 ||x||^2, pixels kept in range): "
        "what each class looks like to the net."
    )
    visual = Finding(
        "class_visualization",
        "Class visualization by gradient ascent",
        caption,
        png,
        {"probability": dict(zip([classes[t] for t in shown], probabilities))},
    )
    return [noise, visual]


def dead_relu_finding(model: nn.Module, split: Split, normalizer: Normalizer, samples: int, seed: int) -> Finding:
    sample = _sample_indices(len(split), samples, seed)
    rows = dead_relu_report(model, _batches(split, sample, normalizer, model))
    if rows:
        png = plots.bar_plot(
            [r.layer for r in rows],
            {"dead units": [r.dead_fraction for r in rows], "zero activations": [r.zero_fraction for r in rows]},
            "ReLU layers",
            "fraction",
        )
        dead = sum(r.dead_units for r in rows)
        caption = (
            f"{dead} of {sum(r.units for r in rows)} ReLU units never fire on {len(sample)} images; "
            "a large dead fraction points to a learning rate that was too high or a bad initialization."
        )
    else:
        png = plots.bar_plot(["(none)"], {"dead units": [0.0]}, "no ReLU layers", "fraction")
        caption = "The model has no ReLU layers."
    return Finding(
        "dead_relu",
        "Dead ReLUs per layer",
        caption,
        png,
        {"samples": len(sample), "layers": [r.to_dict() for r in rows]},
    )


# ----- the command -----
def inspect_model(trained: Any, options: InspectOptions, out: str | Path) -> list[Finding]:
    """Run every inspection on a TrainedModel (infer.load_trained) and write the outputs into `out`."""
    from ..evaluate.trained import load_split

    model, normalizer, classes = trained.model, trained.normalizer, trained.classes
    split = load_split(trained, options.data, options.data_dir, options.split)
    if options.images:
        images = _read_files(options.images, trained.in_shape)
        with torch.no_grad():
            targets = model(normalizer(images.to(next(model.parameters()).device))).argmax(dim=1).tolist()
        captions = [f"{Path(f).name}: predicted {classes[t]}" for f, t in zip(options.images, targets)]
    else:
        chosen = examples(split.labels, len(classes), options.examples)
        images = split_images(split, chosen)
        targets = [int(split.labels[i]) for i in chosen]
        captions = [f"{options.split} #{i}: {classes[t]}" for i, t in zip(chosen, targets)]
    findings = [
        filters_finding(model, trained.in_shape),
        occlusion_finding(model, normalizer, images, targets, captions, options.patch, options.stride),
        saliency_finding(model, normalizer, images, targets, captions),
        max_activation_finding(
            model, split, normalizer, classes, options.layer, options.units, options.top, options.samples, options.seed
        ),
        *noise_finding(model, normalizer, trained.in_shape, classes, options.noise, options.steps, options.seed),
        dead_relu_finding(model, split, normalizer, options.samples, options.seed),
    ]
    write_findings(findings, out, f"Inspection of {trained.path}")
    return findings


def write_findings(findings: list[Finding], out: str | Path, title: str) -> None:
    """`<key>.png` per finding, inspect.json (captions, numbers, file names) and inspect.html."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for finding in findings:
        (out / f"{finding.key}.png").write_bytes(finding.png)
    entries = [
        {"key": f.key, "title": f.title, "caption": f.caption, "image": f"{f.key}.png", "data": f.data}
        for f in findings
    ]
    write_json(out / "inspect.json", {"findings": entries})
    page = Page(title, "convcoach inspect")
    add_findings(page, findings)
    page.write(out / "inspect.html")


def load_findings(folder: str | Path) -> list[Finding]:
    """Findings written by `write_findings` (PNG files that went missing are skipped)."""
    folder = Path(folder)
    entries = loads_json((folder / "inspect.json").read_text())["findings"]
    return [
        Finding(e["key"], e["title"], e["caption"], (folder / e["image"]).read_bytes(), e.get("data", {}))
        for e in entries
        if (folder / e["image"]).is_file()
    ]


def add_findings(page: Page, findings: list[Finding], prefix: str = "inspect-") -> None:
    for finding in findings:
        section = page.section(finding.title, prefix + finding.key.replace("_", "-"))
        section.image(finding.png, finding.title, finding.caption)
        if finding.key == "dead_relu" and finding.data.get("layers"):
            section.value(finding.data["layers"])
        elif finding.key == "occlusion":
            section.value(finding.data["examples"])


# ----- helpers -----
def _sample_indices(size: int, samples: int, seed: int) -> list[int]:
    if size == 0:
        raise ConfigError("the chosen split is empty")
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(size, generator=generator)[: max(1, samples)].sort().values.tolist()


def _batches(split: Split, indices: list[int], normalizer: Normalizer, model: nn.Module, batch_size: int = 256):
    device = next(model.parameters()).device
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        yield normalizer(split_images(split, chunk).to(device)), split.labels[chunk]


def _read_files(files: list[str], in_shape: tuple[int, int, int]) -> torch.Tensor:
    channels, height, width = in_shape
    images = []
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"image not found: {path}")
        images.append(torch.from_numpy(np.ascontiguousarray(read_image(path, channels, (height, width)))))
    return torch.stack(images)
