"""Checkpoints: written atomically (atomic.py) with a BLAKE2b checksum of their tensors, read back with
weights_only=True, and checked (structure, then checksum) before anything uses them."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write_bytes
from ..errors import ConfigError

__all__ = ["FORMAT", "atomic_write_bytes", "load_checkpoint", "load_model_state", "save_checkpoint"]

log = logging.getLogger("convcoach")

FORMAT = "convcoach-checkpoint-1"
CHECKSUM = "blake2b"

# what every checkpoint holds (best.pt, last.pt, an export), as "key" or "key.subkey": the type it must have
ENTRIES: dict[str, type] = {
    "config": dict,
    "model": dict,
    "model.name": str,
    "model.in_shape": list,
    "model.num_classes": int,
    "model.options": dict,
    "classes": list,
    "normalizer": dict,
    "normalizer.mean": list,
    "normalizer.std": list,
    "model_state": dict,
}
# and what last.pt holds besides, for a resume (train/state.py)
RESUME_ENTRIES: dict[str, type] = {
    "optimizer_state": dict,
    "scheduler_state": dict,
    "loader_state": dict,
    "rng": dict,
    "rng.torch": torch.Tensor,
    "rng.cuda": list,
    "callbacks": dict,
    "state": dict,
}


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> None:
    """Write `payload` with the format marker and the checksum of its tensors, atomically."""
    payload = {"format": FORMAT, **payload}
    payload["checksum"] = {"algorithm": CHECKSUM, "digest": tensor_digest(payload)}
    size = sum(tensor.nbytes for _, tensor in _tensors(payload))
    atomic_write_bytes(Path(path), lambda handle: torch.save(payload, handle), size=size)


def load_checkpoint(path: str | Path, resume: bool = False) -> dict[str, Any]:
    """Load a convcoach checkpoint (tensors and plain containers only: weights_only=True), its structure
    and checksum checked; `resume` also requires what a run continues from (last.pt)."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt" if (path / "best.pt").is_file() else path / "last.pt"
    if not path.is_file():
        raise ConfigError(f"checkpoint not found: {path}")
    payload = read_payload(path)
    if not is_checkpoint(payload):
        raise ConfigError(
            f"{path}: not a convcoach checkpoint (a plain state dict? pass it with the model name to the Python API)"
        )
    return checked(payload, path, resume)


def read_payload(path: Path) -> Any:
    """torch.load(weights_only=True) of `path` (a checkpoint or a plain state dict), a failure one line."""
    if path.stat().st_size == 0:
        raise ConfigError(f"{path}: the file is empty (0 bytes), not a checkpoint: a write or copy that never finished")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        detail = (str(exc).strip().splitlines() or [""])[0][:120]
        raise ConfigError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}{': ' + detail if detail else ''})"
        ) from None


def is_checkpoint(payload: Any) -> bool:
    """Whether a loaded file is a convcoach checkpoint (not a plain state dict)."""
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def checked(payload: dict[str, Any], path: Path, resume: bool = False) -> dict[str, Any]:
    """`payload` once its structure and checksum pass (`resume`: with what last.pt needs besides)."""
    check_structure(payload, path, {**ENTRIES, **RESUME_ENTRIES} if resume else ENTRIES)
    verify_checksum(payload, path)
    return payload


def check_structure(payload: dict[str, Any], path: Path, entries: dict[str, type]) -> None:
    """Each of `entries` present with its type, and every model_state value a tensor: else a ConfigError
    naming the file and the key (a damaged or hand-made file would fail later with a KeyError or TypeError)."""
    for dotted, kind in entries.items():
        *parents, key = dotted.split(".")
        container = payload
        for parent in parents:
            container = container[parent]
        if key not in container:
            raise ConfigError(f"{path}: damaged checkpoint: it has no '{dotted}' entry")
        if not isinstance(container[key], kind):
            raise ConfigError(
                f"{path}: damaged checkpoint: '{dotted}' is of type {type(container[key]).__name__}, "
                f"expected {kind.__name__}"
            )
    for name, value in payload["model_state"].items():
        if not isinstance(value, torch.Tensor):
            raise ConfigError(
                f"{path}: damaged checkpoint: model_state['{name}'] is of type {type(value).__name__}, expected Tensor"
            )


def verify_checksum(payload: dict[str, Any], path: Path) -> None:
    """Compare the tensors' digest with the one saved; checkpoints from before checksums pass unchecked."""
    saved = payload.pop("checksum", None)
    if saved is None:
        log.debug("%s has no checksum (written before convcoach stored one): not verified", path)
        return
    if not isinstance(saved, dict) or saved.get("algorithm") != CHECKSUM or not isinstance(saved.get("digest"), str):
        raise ConfigError(f"{path}: damaged checkpoint: its checksum entry is not a {CHECKSUM} digest: {saved!r:.80}")
    digest = tensor_digest(payload)
    if digest != saved["digest"]:
        raise ConfigError(
            f"{path}: checksum mismatch: the file is corrupted (its tensors hash to {digest[:16]}..., "
            f"{saved['digest'][:16]}... when saved); use another copy or checkpoint"
        )


def tensor_digest(payload: dict[str, Any]) -> str:
    """BLAKE2b over every tensor in `payload` in key order: its place, dtype, shape and bytes (about 1 GB/s)."""
    digest = hashlib.blake2b(digest_size=32)
    for place, tensor in _tensors(payload):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{place}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(memoryview(flat.view(torch.uint8).numpy()))
    return digest.hexdigest()


def _tensors(value: Any, place: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """(place, tensor) for each tensor in nested dicts, lists and tuples, in order."""
    if isinstance(value, torch.Tensor):
        yield place, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{place}/{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _tensors(item, f"{place}/{index}")


def load_model_state(model: torch.nn.Module, state: dict, source: str) -> None:
    """load_state_dict with a one-line error when the architecture or class count differs."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or mismatched:
        detail = (
            f"shape of '{mismatched[0]}' is {tuple(state[mismatched[0]].shape)} in the checkpoint, "
            f"{tuple(own[mismatched[0]].shape)} in the model"
            if mismatched
            else f"missing {missing[:2]} unexpected {unexpected[:2]}"
        )
        raise ConfigError(f"{source}: checkpoint does not match this architecture ({detail})")
    model.load_state_dict(state)
