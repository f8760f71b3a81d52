"""Checkpoints: written atomically (temp file, fsync, rename) and read back with weights_only=True."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError

FORMAT = "convcoach-checkpoint-1"


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call write(file) on a temporary file beside `path`, fsync it, then rename over `path`."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; give a file path to write to")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> None:
    atomic_write_bytes(Path(path), lambda handle: torch.save({"format": FORMAT, **payload}, handle))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a convcoach checkpoint (tensors and plain containers only: weights_only=True)."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt" if (path / "best.pt").is_file() else path / "last.pt"
    if not path.is_file():
        raise ConfigError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ConfigError(
            f"{path}: not a convcoach checkpoint (a plain state dict? pass it with the model name to the Python API)"
        )
    return payload


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
