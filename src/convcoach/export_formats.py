"""Export a trained model as ONNX, TorchScript or safetensors, each carrying its class names and preprocessing,
each checked on a batch against the torch model before it replaces the output file."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from . import __version__
from .atomic import staged
from .errors import ConfigError
from .evaluate.trained import TrainedModel
from .models.fuse import fuse_bn
from .models.spec import build_model
from .registry import Registry, suggest

METADATA_FORMAT = "convcoach-export-1"
ONNX_OPSET = 18  # torch.onnx's exporter (torch.export based) targets 18; onnxruntime >= 1.14 runs it
ONNX_TOLERANCE = 1e-4  # max abs logit difference onnxruntime vs torch
TORCHSCRIPT_TOLERANCE = 1e-5
CHECK_BATCH = 5  # not the traced batch of 2: the check also proves the batch dimension is dynamic
INSTALL_HINT = "pip install convcoach[export]"

# name -> write(model, metadata, check batch, out) -> max abs output difference of the reloaded file on the
# batch; `out` is replaced only after that check passes
FORMATS: Registry[Callable[[nn.Module, dict[str, Any], torch.Tensor, Path], float]] = Registry("export format")
SUFFIXES = {".onnx": "onnx", ".ts": "torchscript", ".torchscript": "torchscript", ".safetensors": "safetensors"}


def format_for(out: str | Path, format: str | None = None) -> str:
    """`format` (checked against the known ones), else the one the suffix of `out` names, else 'checkpoint'."""
    if format:
        name = format.strip().lower()
        known = ["checkpoint", *FORMATS.names()]
        if name not in known:
            raise ConfigError(f"unknown export format '{format}'{suggest(name, known)}; known: {', '.join(known)}")
        return name
    return SUFFIXES.get(Path(out).suffix.lower(), "checkpoint")


def export_metadata(trained: TrainedModel, fused: bool) -> dict[str, Any]:
    """What a program without convcoach needs to feed the model: classes, input shape, colour, mean and std."""
    channels, height, width = trained.in_shape
    return {
        "format": METADATA_FORMAT,
        "classes": list(trained.classes),
        "input_shape": [channels, height, width],
        "color": "L" if channels == 1 else "RGB",
        "mean": list(trained.normalizer.mean),
        "std": list(trained.normalizer.std),
        "preprocessing": (
            f"convert to {'L' if channels == 1 else 'RGB'} (transparency onto white), resize to {width}x{height} "
            "bilinear, x = (pixel / 255 - mean) / std per channel, as float32 (N, C, H, W)"
        ),
        "input": "input",
        "output": "logits (softmax gives the class probabilities)",
        "model": trained.spec,
        "fused_bn": fused,
        "convcoach_version": __version__,
        "source": str(trained.path),
    }


def export_model(
    trained: TrainedModel,
    out: str | Path,
    format: str,
    fuse: bool = False,
    already_fused: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Write `trained` (BatchNorm folded first with `fuse`; `already_fused`: its checkpoint was) to `out` as
    `format`; returns the metadata written and the max abs difference of the reloaded file's outputs from
    torch's on a batch of random images."""
    writer = FORMATS.get(format)
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"{out} is a directory; give a file path to write to")
    model = (fuse_bn(trained.model) if fuse else trained.model).eval()
    metadata = export_metadata(trained, fuse or already_fused)
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (CHECK_BATCH, *trained.in_shape), generator=generator, dtype=torch.uint8)
    check = trained.normalizer(pixels)  # images' scale, so the tolerance means what it would on real inputs
    out.parent.mkdir(parents=True, exist_ok=True)
    difference = writer(model, metadata, check, out)
    return {"out": str(out), "format": format, "max_abs_difference": difference, "metadata": metadata}


def _require(format: str, *modules: str) -> list[Any]:
    """The optional packages a format needs, or a one-line error saying how to install them."""
    loaded, missing = [], []
    for name in modules:
        try:
            loaded.append(importlib.import_module(name))
        except ImportError:
            missing.append(name.split(".")[0])
    if missing:
        raise ConfigError(f"--format {format} needs {', '.join(missing)}: {INSTALL_HINT}")
    return loaded


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


def _outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).float()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torch.onnx and torch.jit print progress and deprecation notes: keep the command's output to its one line."""
    loggers = [logging.getLogger(name) for name in ("torch", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@FORMATS.register("onnx")
def write_onnx(model: nn.Module, metadata: dict[str, Any], check: torch.Tensor, out: Path) -> float:
    """ONNX (opset 18, batch dimension dynamic) with each metadata entry as a JSON string in metadata_props;
    onnxruntime's logits must match torch's within 1e-4."""
    onnx, _, onnxruntime = _require("onnx", "onnx", "onnxscript", "onnxruntime")
    metadata["opset"] = ONNX_OPSET
    try:
        with _quiet():
            program = torch.onnx.export(
                model,
                (check[:2],),
                input_names=["input"],
                output_names=["logits"],
                opset_version=ONNX_OPSET,
                dynamo=True,
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                verbose=False,
            )
    except Exception as exc:  # torch.export cannot capture this model's Python (data-dependent control flow)
        raise ConfigError(
            f"{out}: torch.onnx could not export the model ({type(exc).__name__}: {_first_line(exc)})"
        ) from None
    proto = program.model_proto
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    with staged(out, size=proto.ByteSize()) as tmp:
        onnx.save(proto, str(tmp))
        session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        (logits,) = session.run(None, {"input": check.numpy()})
        difference = (torch.from_numpy(logits) - _outputs(model, check)).abs().max().item()
        if not difference <= ONNX_TOLERANCE:
            raise ConfigError(
                f"{out}: onnxruntime's outputs differ from torch's by {difference:.2e} (> {ONNX_TOLERANCE:g}); "
                "not written"
            )
    return difference


@FORMATS.register("torchscript")
def write_torchscript(model: nn.Module, metadata: dict[str, Any], check: torch.Tensor, out: Path) -> float:
    """torch.jit.trace'd model with the metadata as `convcoach.json` in its extra files (torch.jit.load(...,
    _extra_files={'convcoach.json': ''})); the reloaded model must match within 1e-5."""
    text = json.dumps(metadata, indent=2)
    with _quiet():
        traced = torch.jit.trace(model, check[:2])
        buffer = io.BytesIO()  # torch.jit.save to a path aborts the process on a full disk: we write the bytes
        torch.jit.save(traced, buffer, _extra_files={"convcoach.json": text})
    with _quiet(), staged(out, size=buffer.tell()) as tmp:
        tmp.write_bytes(buffer.getvalue())
        extra = {"convcoach.json": ""}
        reloaded = torch.jit.load(str(tmp), map_location="cpu", _extra_files=extra)
        difference = (_outputs(reloaded, check) - _outputs(model, check)).abs().max().item()
        if not difference <= TORCHSCRIPT_TOLERANCE or json.loads(extra["convcoach.json"]) != metadata:
            raise ConfigError(f"{out}: the reloaded TorchScript model differs by {difference:.2e}; not written")
    return difference


@FORMATS.register("safetensors")
def write_safetensors(model: nn.Module, metadata: dict[str, Any], check: torch.Tensor, out: Path) -> float:
    """The state dict as safetensors, metadata (JSON strings) in its header and as `<out>.json` beside it;
    the tensors must reload equal and a model rebuilt from the metadata's spec must give the same outputs."""
    (safetensors_torch,) = _require("safetensors", "safetensors.torch")
    state = {key: value.detach().contiguous().clone() for key, value in model.state_dict().items()}
    sidecar, text = out.with_suffix(".json"), (json.dumps(metadata, indent=2) + "\n").encode()
    # serialized in memory and written by Python, so a full disk is an OSError (save_file's is not)
    data = safetensors_torch.save(state, metadata={key: json.dumps(value) for key, value in metadata.items()})
    with staged(out, size=len(data)) as tmp:
        tmp.write_bytes(data)
        reloaded = safetensors_torch.load_file(str(tmp))
        if reloaded.keys() != state.keys() or any(not torch.equal(reloaded[k], state[k]) for k in state):
            raise ConfigError(f"{out}: the tensors read back differ from the model's; not written")
        rebuilt = build_model(metadata["model"])
        if metadata["fused_bn"]:
            rebuilt = fuse_bn(rebuilt, inplace=True)
        rebuilt.load_state_dict(reloaded)
        difference = (_outputs(rebuilt.eval(), check) - _outputs(model, check)).abs().max().item()
        if difference != 0:
            raise ConfigError(f"{out}: a model rebuilt from it differs by {difference:.2e}; not written")
        with staged(sidecar, size=len(text)) as tmp_json:  # renamed just before `out`, as both pass the checks
            tmp_json.write_bytes(text)
    return difference
