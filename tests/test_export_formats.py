"""`convcoach export` to ONNX, TorchScript and safetensors: outputs checked against torch, class names and
preprocessing carried in each file, atomic writes, one-line errors; the docs' ONNX example runs without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from conftest import make_blobs, small_config
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from convcoach import Trainer
from convcoach.cli import main
from convcoach.infer import load_trained, predict_paths
from convcoach.models.spec import build_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    x, y = make_blobs()
    np.savez(root / "blobs.npz", x=x, y=y)
    Trainer(small_config(root / "blobs.npz", root / "run", epochs=3, report=False, monitors=False)).fit()
    return root / "run"


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    x, _ = make_blobs(n_per_class=3, seed=4)
    return torch.from_numpy(x)[:, None]  # 9 uint8 (1, 12, 12) images the run never saw


def export(capsys, *argv: str) -> str:
    assert main(["export", *argv]) == 0
    return capsys.readouterr().out


def expected_metadata(trained) -> dict:
    return {
        "classes": ["0", "1", "2"],
        "input_shape": [1, 12, 12],
        "color": "L",
        "mean": trained.normalizer.mean,
        "std": trained.normalizer.std,
    }


@pytest.mark.parametrize("fuse", [False, True])
def test_onnx_matches_torch_on_any_batch_size_and_carries_classes_and_preprocessing(
    run_dir, images, tmp_path, capsys, fuse
):
    out = tmp_path / "model.onnx"
    printed = export(capsys, "--checkpoint", str(run_dir), "--out", str(out), *(["--fuse-bn"] if fuse else []))
    assert printed.startswith(f"exported {out} (onnx, opset 18)") and "max abs difference from torch" in printed
    trained = load_trained(run_dir)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for batch in (images, images[:1]):  # exported with a batch of 2: the batch dimension is dynamic
        x = trained.normalizer(batch)
        (logits,) = session.run(None, {"input": x.numpy()})
        with torch.no_grad():
            assert np.abs(logits - trained.model(x).numpy()).max() < 1e-4
    metadata = {k: json.loads(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}
    assert {k: metadata[k] for k in expected_metadata(trained)} == expected_metadata(trained)
    assert metadata["opset"] == 18 and metadata["fused_bn"] is fuse and metadata["model"] == trained.spec
    assert [i.shape for i in session.get_inputs()] == [["batch", 1, 12, 12]]


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_reloads_equal_with_its_metadata(run_dir, images, tmp_path, capsys):
    out = tmp_path / "model.ts"
    assert export(capsys, "--checkpoint", str(run_dir), "--out", str(out)).startswith(f"exported {out} (torchscript)")
    trained = load_trained(run_dir)
    extra = {"convcoach.json": ""}
    reloaded = torch.jit.load(str(out), _extra_files=extra)
    x = trained.normalizer(images)
    with torch.no_grad():
        assert (reloaded(x) - trained.model(x)).abs().max().item() <= 1e-5
    metadata = json.loads(extra["convcoach.json"])
    assert {k: metadata[k] for k in expected_metadata(trained)} == expected_metadata(trained)


def test_safetensors_holds_the_state_dict_with_metadata_in_its_header_and_beside_it(run_dir, images, tmp_path, capsys):
    out = tmp_path / "weights.safetensors"
    export(capsys, "--checkpoint", str(run_dir), "--out", str(out), "--fuse-bn")
    trained = load_trained(run_dir)
    sidecar = json.loads(out.with_suffix(".json").read_text())
    with safe_open(str(out), "pt") as handle:
        header = {k: json.loads(v) for k, v in handle.metadata().items()}
    assert header == sidecar and sidecar["fused_bn"] is True
    assert {k: sidecar[k] for k in expected_metadata(trained)} == expected_metadata(trained)
    state = load_file(str(out))
    assert not any("running_mean" in key for key in state)  # folded
    from convcoach.models.fuse import fuse_bn

    rebuilt = fuse_bn(build_model(sidecar["model"]), inplace=True)
    rebuilt.load_state_dict(state)
    x = trained.normalizer(images)
    with torch.no_grad():
        assert (rebuilt.eval()(x) - trained.model(x)).abs().max().item() < 1e-4


def test_format_flag_overrides_the_suffix_and_the_checkpoint_stays_the_default(run_dir, tmp_path, capsys):
    export(capsys, "--checkpoint", str(run_dir), "--out", str(tmp_path / "model.bin"), "--format", "ONNX")
    assert onnxruntime.InferenceSession(str(tmp_path / "model.bin")).get_inputs()[0].name == "input"
    export(capsys, "--checkpoint", str(run_dir), "--out", str(tmp_path / "model.pt"))
    assert load_trained(tmp_path / "model.pt").classes == ["0", "1", "2"]


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("convcoach: error: "), err
    return err[0]


def test_an_unknown_format_lists_the_valid_ones_and_writes_nothing(run_dir, tmp_path, capsys):
    message = one_line_error(
        capsys, ["export", "--checkpoint", str(run_dir), "--out", str(tmp_path / "m.x"), "--format", "tflite"]
    )
    assert (
        message == "convcoach: error: unknown export format 'tflite'; known: checkpoint, onnx, safetensors, torchscript"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("module", "suffix"), [("onnxruntime", ".onnx"), ("safetensors.torch", ".safetensors")])
def test_a_missing_optional_package_says_how_to_install_it(run_dir, tmp_path, capsys, monkeypatch, module, suffix):
    monkeypatch.setitem(sys.modules, module, None)  # `import` of it now raises ImportError
    message = one_line_error(capsys, ["export", "--checkpoint", str(run_dir), "--out", str(tmp_path / f"m{suffix}")])
    assert message.endswith(f"needs {module.split('.')[0]}: pip install convcoach[export]")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_check_leaves_neither_the_file_nor_a_temporary(run_dir, tmp_path, capsys, monkeypatch):
    import convcoach.export_formats as formats

    monkeypatch.setattr(formats, "ONNX_TOLERANCE", -1.0)  # any difference fails
    out = tmp_path / "model.onnx"
    out.write_text("the previous export")
    message = one_line_error(capsys, ["export", "--checkpoint", str(run_dir), "--out", str(out)])
    assert "onnxruntime's outputs differ from torch's by" in message and message.endswith("not written")
    assert list(tmp_path.iterdir()) == [out] and out.read_text() == "the previous export"


def docs_example() -> str:
    from test_docs import extract_blocks

    (block,) = [
        b for b in extract_blocks(ROOT / "docs" / "guide" / "deploy.md") if "onnxruntime.InferenceSession" in b.code
    ]
    return block.code


def test_the_docs_onnx_example_runs_without_torch_or_convcoach(run_dir, images, tmp_path, capsys):
    export(capsys, "--checkpoint", str(run_dir), "--out", str(tmp_path / "model.onnx"))
    Image.fromarray(images[4, 0].numpy()).resize((36, 36), Image.NEAREST).save(tmp_path / "ankle_boot.png")
    (tmp_path / "example.py").write_text(docs_example())
    blocked = (
        "import sys; sys.modules['torch'] = None; sys.modules['convcoach'] = None; exec(open('example.py').read())"
    )
    result = subprocess.run([sys.executable, "-c", blocked], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (row,) = predict_paths(load_trained(run_dir), [tmp_path / "ankle_boot.png"])
    printed_class, printed_probability = result.stdout.split()
    assert printed_class == row["prediction"]
    assert float(printed_probability) == pytest.approx(row["probability"], abs=1e-4)
