"""Checkpoints read back checked: a damaged structure names the file and the key, corrupted tensor bytes
fail the checksum, checkpoints from before checksums still load, and the CLI says each in one line."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import torch

from convcoach.cli import main
from convcoach.errors import ConfigError
from convcoach.train.checkpoint import FORMAT, load_checkpoint, save_checkpoint, tensor_digest


def _payload() -> dict:
    """What every checkpoint holds (an exported one holds only this), with a 16 kB weight."""
    return {
        "config": {"model": "cnn"},
        "model": {"name": "cnn", "in_shape": [1, 8, 8], "num_classes": 2, "options": {}},
        "classes": ["a", "b"],
        "normalizer": {"mean": [0.5], "std": [0.25]},
        "model_state": {"weight": torch.arange(4096.0).view(64, 64), "bias": torch.zeros(64)},
    }


def _flip_inside(path: Path, tensor: torch.Tensor, count: int = 64) -> None:
    """Invert `count` bytes in the middle of `tensor`'s data in the file (found by its bytes)."""
    raw = bytearray(path.read_bytes())
    start = raw.find(tensor.numpy().tobytes())
    assert start > 0
    middle = start + tensor.nbytes // 2
    raw[middle : middle + count] = bytes(b ^ 0xFF for b in raw[middle : middle + count])
    path.write_bytes(bytes(raw))


def test_flipped_bytes_inside_tensor_data_fail_the_checksum(tmp_path):
    path = tmp_path / "best.pt"
    save_checkpoint(_payload(), path)
    assert torch.equal(load_checkpoint(path)["model_state"]["weight"], _payload()["model_state"]["weight"])
    _flip_inside(path, _payload()["model_state"]["weight"])
    assert torch.load(path, weights_only=True)["model_state"]["weight"].sum() != 4095 * 4096 / 2  # loads, wrong
    with pytest.raises(ConfigError) as error:
        load_checkpoint(path)
    assert re.fullmatch(
        rf"{re.escape(str(path))}: checksum mismatch: the file is corrupted \(its tensors hash to [0-9a-f]{{16}}"
        r"\.\.\., [0-9a-f]{16}\.\.\. when saved\); use another copy or checkpoint",
        str(error.value),
    )


def test_the_checksum_covers_every_tensor_with_its_place_dtype_and_shape():
    payload = _payload()
    digest = tensor_digest(payload)
    assert len(digest) == 64 and tensor_digest(_payload()) == digest
    swapped = _payload()
    swapped["model_state"] = {"bias": payload["model_state"]["weight"], "weight": payload["model_state"]["bias"]}
    reshaped = _payload()
    reshaped["model_state"]["weight"] = reshaped["model_state"]["weight"].view(32, 128)
    retyped = _payload()
    retyped["model_state"]["bias"] = torch.zeros(32, dtype=torch.float64)  # the same 256 zero bytes
    assert len({digest, tensor_digest(swapped), tensor_digest(reshaped), tensor_digest(retyped)}) == 4


def test_a_checkpoint_from_before_checksums_still_loads(tmp_path, caplog):
    path = tmp_path / "old.pt"
    torch.save({"format": FORMAT, **_payload()}, path)
    with caplog.at_level(logging.DEBUG, logger="convcoach"):
        payload = load_checkpoint(path)
    assert payload["classes"] == ["a", "b"] and "checksum" not in payload
    assert f"{path} has no checksum (written before convcoach stored one): not verified" in caplog.text


def _damaged(**changes) -> dict:
    payload = {"format": FORMAT, **_payload()}
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        container = payload
        for parent in parents:
            container = container[parent]
        if value is None:
            del container[key]
        else:
            container[key] = value
    return payload


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"format": FORMAT}, "it has no 'config' entry"),
        (_damaged(model=5), "'model' is of type int, expected dict"),
        (_damaged(config="x"), "'config' is of type str, expected dict"),
        (_damaged(model__name=None), "it has no 'model.name' entry"),
        (_damaged(model__in_shape=(1, 8, 8)), "'model.in_shape' is of type tuple, expected list"),
        (_damaged(normalizer__std="0.25"), "'normalizer.std' is of type str, expected list"),
        (_damaged(model_state__bias=0.0), r"model_state\['bias'\] is of type float, expected Tensor"),
        (_damaged(checksum={"algorithm": "md5", "digest": "00"}), "its checksum entry is not a blake2b digest"),
    ],
)
def test_a_damaged_structure_is_an_error_naming_the_file_and_the_key(tmp_path, payload, message):
    path = tmp_path / "damaged.pt"
    torch.save(payload, path)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: damaged checkpoint: {message}"):
        load_checkpoint(path)


def test_a_resume_also_needs_what_the_run_continues_from(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(_payload(), path)  # an export's entries: enough to evaluate, not to continue
    load_checkpoint(path)
    with pytest.raises(ConfigError, match=r"last\.pt: damaged checkpoint: it has no 'optimizer_state' entry"):
        load_checkpoint(path, resume=True)


@pytest.mark.parametrize("damage", ["empty", "marker only", "wrong types", "flipped bytes", "junk"])
def test_cli_eval_of_a_damaged_checkpoint_is_one_line(tmp_path, capsys, monkeypatch, damage):
    monkeypatch.chdir(tmp_path)  # eval's default output folder, runs/eval-<time>, goes here
    path = tmp_path / "best.pt"
    save_checkpoint(_payload(), path)
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "marker only":
        torch.save({"format": FORMAT}, path)
    elif damage == "wrong types":
        torch.save(_damaged(model=5, config="x"), path)
    elif damage == "flipped bytes":
        _flip_inside(path, _payload()["model_state"]["weight"])
    else:
        path.write_bytes(b"\x00")
    assert main(["eval", "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err
    expected = {
        "empty": "the file is empty (0 bytes), not a checkpoint: a write or copy that never finished",
        "marker only": "damaged checkpoint: it has no 'config' entry",
        "wrong types": "damaged checkpoint: 'config' is of type str, expected dict",
        "flipped bytes": "checksum mismatch: the file is corrupted (",
        "junk": "not a readable checkpoint (",
    }[damage]
    assert err.startswith(f"convcoach: error: {path}: {expected}") and err.count("\n") == 1


def test_a_pretrained_checkpoint_for_transfer_gets_the_same_checks(tmp_path):
    from convcoach.transfer.pretrained import read_pretrained

    path, plain, empty = tmp_path / "best.pt", tmp_path / "plain.pt", tmp_path / "empty.pt"
    save_checkpoint(_payload(), path)
    _flip_inside(path, _payload()["model_state"]["weight"])
    with pytest.raises(ConfigError, match=r"best\.pt: checksum mismatch: the file is corrupted"):
        read_pretrained(path)
    empty.write_bytes(b"")
    with pytest.raises(ConfigError, match=r"empty\.pt: the file is empty \(0 bytes\)"):
        read_pretrained(empty)
    torch.save({"weight": torch.ones(2)}, plain)  # a plain state dict: no structure to check
    assert torch.equal(read_pretrained(plain)["weight"], torch.ones(2))
