"""A catalogue of bad input over every command, called in-process: each case must exit 2 with one line
`convcoach[ COMMAND]: error: ...` that names the key, file or value at fault, and never a traceback.
The config-field cases are generated from TrainConfig's metadata, so a new option is covered too."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import make_blobs

from convcoach.cli import main
from convcoach.config import TrainConfig

CONFIG_COMMANDS = ("train", "check", "lr-find", "stats", "tune")
BAD = "@BAD"  # placeholder replaced by the case's scratch folder


def _field_cases() -> list[tuple[str, list[str], str]]:
    """Per TrainConfig field: a value of the wrong type, one out of its bounds, a non-finite one, an unknown
    choice or spec name; each expected to name the field (as key or --flag) or the value."""
    cases = []
    for item in dataclasses.fields(TrainConfig):
        meta, name, flag = item.metadata, item.name, "--" + item.name.replace("_", "-")
        kind = str(item.type)
        bad: list[str] = []
        if kind.startswith("int"):
            bad += ["seven", "2.5"]
        if kind.startswith("float"):
            bad += ["seven", "nan", "inf"]
        if meta.get("low") is not None:
            bad.append(str(meta["low"] - 1))
        if meta.get("high") is not None and kind.startswith(("int", "float")):
            bad.append(str(meta["high"] * 2 + 1))
        if meta.get("above") is not None:
            bad.append(str(meta["above"]))
        if meta.get("choices") or meta.get("spec") in ("activation", "norm", "loss", "optimizer", "model", "init"):
            bad.append("bogus")
        if meta.get("spec") in ("schedule", "reg", "tta", "augment", "progressive"):
            bad += ["bogus:1", "nan"] if meta.get("spec") != "augment" else ["bogus:1", "hflip:2", "translate:-3"]
        for value in dict.fromkeys(bad):
            named = rf"{name}|{flag}|{re.escape(value)}|'{re.escape(value.split(':')[0])}'"
            cases.append((f"train {flag} {value}", ["train", flag, value], named))
    return cases


FIELD_CASES = _field_cases()

OTHER_CASES: list[tuple[str, list[str], str]] = [
    # argument parsing: one line too
    ("unknown command", ["trian"], r"invalid choice: 'trian'"),
    ("unknown flag", ["train", "--epoch", "3"], r"unrecognized arguments: --epoch"),
    ("missing value", ["train", "--epochs"], r"--epochs"),
    ("eval without checkpoint", ["eval"], r"--checkpoint"),
    ("predict without images", ["predict", "--checkpoint", "x.pt"], r"PATH"),
    ("report without run", ["report"], r"RUN_DIR"),
    # config files
    ("config missing", ["train", "--config", "@BAD/missing.yaml"], r"missing\.yaml"),
    ("config not yaml", ["train", "--config", "@BAD/broken.yaml"], r"broken\.yaml"),
    ("config a list", ["train", "--config", "@BAD/list.yaml"], r"list\.yaml"),
    ("config binary", ["train", "--config", "@BAD/binary.yaml"], r"binary\.yaml"),
    ("config unknown key", ["train", "--config", "@BAD/unknown.yaml"], r"epoch"),
    ("config wrong type", ["train", "--config", "@BAD/wrongtype.yaml"], r"batch_size"),
    ("config alias bomb", ["train", "--config", "@BAD/bomb.yaml"], r"bomb\.yaml"),
    ("config a folder", ["train", "--config", "@BAD"], r"BAD|config"),
    ("check config binary", ["check", "--config", "@BAD/binary.yaml"], r"binary\.yaml"),
    ("tune config list", ["tune", "--config", "@BAD/list.yaml"], r"list\.yaml"),
    ("recipe unknown", ["train", "--recipe", "bogus"], r"bogus"),
    # data
    ("data unknown", ["train", "--data", "bogus"], r"bogus"),
    ("npz missing", ["train", "--data", "npz:@BAD/none.npz"], r"none\.npz"),
    ("npz not npz", ["train", "--data", "npz:@BAD/list.yaml"], r"list\.yaml"),
    ("npz without y", ["train", "--data", "npz:@BAD/noy.npz", "--epochs", "1"], r"noy\.npz"),
    ("folder empty", ["train", "--data", "@BAD/empty", "--epochs", "1"], r"empty"),
    (
        "subset too small to split",
        ["train", "--data", "npz:@BAD/tiny.npz", "--subset", "1", "--epochs", "1"],
        r"too few images",
    ),
    ("image size bomb", ["train", "--data", "npz:@BAD/tiny.npz", "--image-size", "100000"], r"image-size|GiB"),
    ("depth bomb", ["train", "--data", "npz:@BAD/tiny.npz", "--model", "cnn", "--depth", "100000"], r"depth"),
    ("width bomb", ["train", "--data", "npz:@BAD/tiny.npz", "--model", "cnn", "--width", "100000000"], r"width"),
    ("channels 2", ["train", "--data", "npz:@BAD/tiny.npz", "--channels", "2"], r"channels"),
    ("model options junk", ["train", "--model-options", "width=[1,2]"], r"model_options"),
    ("model option unknown", ["train", "--data", "npz:@BAD/tiny.npz", "--model-options", "bogus=1"], r"bogus"),
    ("resume missing", ["train", "--resume", "@BAD/norun"], r"norun"),
    ("resume a file", ["train", "--resume", "@BAD/list.yaml"], r"list\.yaml"),
    ("lr after scaling", ["train", "--lr", "1e308", "--batch-size", "1024", "--base-batch-size", "256"], r"lr"),
    ("init negative std", ["train", "--init", "normal:-1"], r"normal:-1"),
    # checkpoints
    ("eval checkpoint missing", ["eval", "--checkpoint", "@BAD/none.pt"], r"none\.pt"),
    ("eval checkpoint empty", ["eval", "--checkpoint", "@BAD/empty.pt"], r"empty\.pt"),
    ("eval checkpoint text", ["eval", "--checkpoint", "@BAD/list.yaml"], r"list\.yaml"),
    ("eval checkpoint marker only", ["eval", "--checkpoint", "@BAD/marker.pt"], r"marker\.pt"),
    ("eval checkpoint plain dict", ["eval", "--checkpoint", "@BAD/plain.pt"], r"plain\.pt"),
    ("eval bad tta", ["eval", "--checkpoint", "@RUN", "--tta", "bogus"], r"bogus"),
    ("eval top-k 0", ["eval", "--checkpoint", "@RUN", "--top-k", "0"], r"--top-k"),
    ("eval batch 0", ["eval", "--checkpoint", "@RUN", "--batch-size", "0"], r"--batch-size"),
    ("eval bad split", ["eval", "--checkpoint", "@RUN", "--split", "bogus"], r"--split"),
    ("eval bad device", ["eval", "--checkpoint", "@RUN", "--device", "tpu"], r"tpu"),
    ("eval other classes", ["eval", "--checkpoint", "@RUN", "--data", "npz:@BAD/fiveclass.npz"], r"class"),
    ("eval out a file", ["eval", "--checkpoint", "@RUN", "--out", "@BAD/list.yaml"], r"list\.yaml"),
    ("export checkpoint missing", ["export", "--checkpoint", "@BAD/none.pt", "--out", "@BAD/x.pt"], r"none\.pt"),
    ("export bad format", ["export", "--checkpoint", "@RUN", "--out", "@BAD/x.pt", "--format", "bogus"], r"bogus"),
    ("export out a folder", ["export", "--checkpoint", "@RUN", "--out", "@BAD"], r"BAD|--out"),
    ("export out under a file", ["export", "--checkpoint", "@RUN", "--out", "@BAD/list.yaml/x.pt"], r"list\.yaml"),
    ("predict checkpoint missing", ["predict", "--checkpoint", "@BAD/none.pt", "@BAD/img.png"], r"none\.pt"),
    ("predict image missing", ["predict", "--checkpoint", "@RUN", "@BAD/none.png", "--strict"], r"none\.png"),
    ("predict image corrupt strict", ["predict", "--checkpoint", "@RUN", "@BAD/corrupt.png", "--strict"], r"corrupt"),
    ("predict image bomb strict", ["predict", "--checkpoint", "@RUN", "@BAD/bomb.png", "--strict"], r"bomb\.png"),
    ("predict bad format", ["predict", "--checkpoint", "@RUN", "@BAD/img.png", "--format", "xml"], r"xml"),
    ("predict bad tta", ["predict", "--checkpoint", "@RUN", "@BAD/img.png", "--tta", "10crop:x"], r"10crop:x"),
    ("predict workers 0", ["predict", "--checkpoint", "@RUN", "@BAD/img.png", "--workers", "0"], r"--workers"),
    ("predict glob matches nothing", ["predict", "--checkpoint", "@RUN", "@BAD/*.jpeg", "--strict"], r"jpeg"),
    ("augment unknown op", ["augment", "--data", "npz:@BAD/tiny.npz", "--augment", "bogus"], r"bogus"),
    ("augment n 0", ["augment", "--data", "npz:@BAD/tiny.npz", "--augment", "hflip", "--n", "0"], r"--n"),
    ("augment data missing", ["augment", "--data", "npz:@BAD/none.npz", "--augment", "hflip"], r"none\.npz"),
    (
        "augment out a file",
        ["augment", "--data", "npz:@BAD/tiny.npz", "--augment", "hflip", "--out", "@BAD/list.yaml"],
        r"list\.yaml",
    ),
    (
        "features checkpoint missing",
        ["features", "--checkpoint", "@BAD/none.pt", "--data", "npz:@BAD/tiny.npz"],
        r"none",
    ),
    ("features bad layer", ["features", "--checkpoint", "@RUN", "--data", "npz:@BAD/tiny.npz", "--layer", "zz"], r"zz"),
    ("knn k 0", ["knn", "--data", "npz:@BAD/tiny.npz", "--k", "0"], r"--k|0"),
    ("knn bad distance", ["knn", "--data", "npz:@BAD/tiny.npz", "--distance", "cosine"], r"cosine|--distance"),
    ("knn features missing", ["knn", "--data", "npz:@BAD/tiny.npz", "--features", "@BAD/none.pt"], r"none\.pt"),
    ("knn out a file", ["knn", "--data", "npz:@BAD/tiny.npz", "--out", "@BAD/list.yaml"], r"list\.yaml"),
    ("inspect checkpoint missing", ["inspect", "--checkpoint", "@BAD/none.pt"], r"none\.pt"),
    ("inspect bad layer", ["inspect", "--checkpoint", "@RUN", "--layer", "zz"], r"zz"),
    ("inspect image missing", ["inspect", "--checkpoint", "@RUN", "--image", "@BAD/none.png"], r"none\.png"),
    ("inspect out a file", ["inspect", "--checkpoint", "@RUN", "--out", "@BAD/list.yaml"], r"list\.yaml"),
    ("report run missing", ["report", "@BAD/norun"], r"norun"),
    ("report not a run", ["report", "@BAD/empty"], r"empty"),
    ("report binary summary", ["report", "@BAD/binrun"], r"binrun"),
    ("compare run missing", ["compare", "@BAD/norun", "@BAD/norun2"], r"norun"),
    ("compare out a folder", ["compare", "@RUNDIR", "@RUNDIR", "--out", "@BAD"], r"BAD|--out"),
    ("diagnose run missing", ["diagnose", "@BAD/norun"], r"norun"),
    ("diagnose metrics binary", ["diagnose", "@BAD/binrun"], r"binrun"),
    ("diagnose metrics not json", ["diagnose", "@BAD/badrows"], r"metrics"),
    ("tune bad trials", ["tune", "--trials", "0"], r"trials"),
    (
        "tune bad storage",
        ["tune", "--storage", "mysql+bogus://x", "--space", "lr=0.01..0.1", "--data", "npz:@BAD/tiny.npz"],
        r"storage",
    ),
    ("tune bad space", ["tune", "--space", "lr=bogus", "--data", "npz:@BAD/tiny.npz"], r"lr|space"),
    ("finetune source missing", ["finetune", "--from", "@BAD/none.pt", "--data", "npz:@BAD/tiny.npz"], r"none\.pt"),
    ("finetune bad strategy", ["finetune", "--from", "@RUN", "--data", "npz:@BAD/tiny.npz", "--strategy", "x"], r"x"),
    (
        "finetune head mult nan",
        ["finetune", "--from", "@RUN", "--data", "npz:@BAD/tiny.npz", "--head-lr-mult", "nan"],
        r"nan",
    ),
    (
        "finetune head mult inf",
        ["finetune", "--from", "@RUN", "--data", "npz:@BAD/tiny.npz", "--head-lr-mult", "inf"],
        r"inf",
    ),
    ("stats bad data", ["stats", "--data", "bogus"], r"bogus"),
    ("lr-find bad model", ["lr-find", "--model", "bogus"], r"bogus"),
    ("completion unknown shell", ["completion", "powershell"], r"powershell"),
    ("completion no shell", ["completion"], r"shell|required"),
]

CASES = FIELD_CASES + OTHER_CASES


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> dict[str, Path]:
    """The files the cases name: broken configs, data, checkpoints and run folders, and one small trained run."""
    import torch
    from PIL import Image

    base = tmp_path_factory.mktemp("bad")
    x, y = make_blobs(n_per_class=20, classes=3, size=8)
    np.savez(base / "tiny.npz", x=x, y=y)
    np.savez(base / "noy.npz", x=x)
    np.savez(base / "fiveclass.npz", x=x, y=np.arange(len(y)) % 5)
    (base / "broken.yaml").write_text("epochs: [1, 2\n")
    (base / "list.yaml").write_text("- 1\n- 2\n")
    (base / "binary.yaml").write_bytes(b"\xff\xfe\x00\x81epochs: 1\n")
    (base / "unknown.yaml").write_text("epoch: 3\n")
    (base / "wrongtype.yaml").write_text("batch_size: lots\n")
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for index, name in enumerate("bcdefghi"):
        bomb.append(f"{name}: &{name} [{', '.join(['*' + 'abcdefgh'[index]] * 9)}]")
    (base / "bomb.yaml").write_text("\n".join(bomb) + "\n")
    (base / "empty").mkdir()
    (base / "empty.pt").write_bytes(b"")
    torch.save({"format": "convcoach-checkpoint-1"}, base / "marker.pt")
    torch.save({"weight": torch.zeros(2)}, base / "plain.pt")
    Image.fromarray(x[0]).save(base / "img.png")
    (base / "corrupt.png").write_bytes((base / "img.png").read_bytes()[:40])
    _bomb_png(base / "bomb.png")
    for name in ("binrun", "badrows"):
        (base / name).mkdir()
        (base / name / "config.yaml").write_text("epochs: 1\n")
    (base / "binrun" / "summary.json").write_bytes(b"\x80\x81\xfe")
    (base / "binrun" / "metrics.jsonl").write_bytes(b"\x80\x81\xfe\n")
    (base / "badrows" / "metrics.jsonl").write_text("[1, 2]\n")
    run = base / "run"
    tiny = ["--model", "cnn", "--depth", "1", "--width", "4", "--epochs", "1", "--batch-size", "32"]
    assert main(["train", "--data", f"npz:{base / 'tiny.npz'}", *tiny, "--out", str(run), "--quiet"]) == 0
    return {"base": base, "run": run}


def _bomb_png(path: Path) -> None:
    """A valid PNG header that declares 30000 x 30000 pixels (PIL's decompression-bomb limit is ~179M)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100)))


def _argv(argv: list[str], scratch: dict[str, Path], out: Path) -> list[str]:
    replaced = [
        a.replace("@BAD", str(scratch["base"]))
        .replace("@RUNDIR", str(scratch["run"]))
        .replace("@RUN", str(scratch["run"] / "best.pt"))
        for a in argv
    ]
    if replaced and replaced[0] in CONFIG_COMMANDS and "--data" not in replaced and "--config" not in replaced:
        replaced += ["--data", f"npz:{scratch['base'] / 'tiny.npz'}"]
    if replaced and replaced[0] in CONFIG_COMMANDS + ("finetune",) and "--out" not in replaced:
        replaced += ["--out", str(out)]
    return replaced


@pytest.mark.parametrize(("argv", "named"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(argv, named, scratch, tmp_path, capsys):
    try:
        code = main(_argv(argv, scratch, tmp_path / "out"))
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"convcoach( [\w-]+)?: error: ", line)]
    assert "Traceback" not in err
    assert code == 2 and len(errors) == 1, err
    assert re.search(named, errors[0]), errors[0]
    assert len(errors[0]) < 600  # one readable line, not a dump


def test_the_catalogue_covers_every_command_and_150_cases():
    from convcoach.cli import COMMANDS, load_commands

    load_commands()
    covered = {argv[0] for _, argv, _ in CASES}
    assert set(COMMANDS) - covered == set()
    assert len(CASES) >= 150
