"""ImageNet weights end to end against stand-in servers on 127.0.0.1: torchvision's files (checked
by the SHA-256 prefix in their names, cached atomically, found offline first) and timm's safetensors on
a Hugging Face hub; a run started from them keeps ImageNet preprocessing in its checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from weights_server import fake_weights, pth_bytes, serve, torchvision_name

from convcoach import TrainConfig
from convcoach.cli import main
from convcoach.errors import ConfigError
from convcoach.models import weights as weights_mod
from convcoach.models.weights import IMAGENET_MEAN, IMAGENET_STD, imagenet_weights, resolve_weights
from convcoach.train.checkpoint import load_checkpoint
from convcoach.train.setup import effective_lr


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Private caches (convcoach's, torch hub's, the HF hub's), no mirror, no proxy for 127.0.0.1."""
    monkeypatch.setenv("CONVCOACH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in ("CONVCOACH_WEIGHTS", "CONVCOACH_WEIGHTS_URL", "HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def resnet18_file():
    state = fake_weights("resnet18")
    payload = pth_bytes(state)
    return state, payload, torchvision_name("resnet18", payload)


def _use(monkeypatch, entry, name="resnet18"):
    monkeypatch.setitem(weights_mod.IMAGENET_WEIGHTS, name, entry)


def _cache_files(tmp_path):
    folder = tmp_path / "cache" / "weights"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_download_is_checked_and_cached_then_found_offline(tmp_path, monkeypatch, resnet18_file):
    state, payload, entry = resnet18_file
    _use(monkeypatch, entry)
    with serve({f"/{entry.file}": payload}) as (url, requests):
        monkeypatch.setenv("CONVCOACH_WEIGHTS_URL", url)
        loaded = imagenet_weights("resnet18")
        assert requests == [f"GET /{entry.file}"]
    assert _cache_files(tmp_path) == [entry.file]
    assert loaded.architecture == "resnet18" and loaded.preprocessing.size == 224
    assert torch.equal(loaded.state["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])
    # the server is gone: the cached copy is found first, without a request
    again = imagenet_weights("resnet18")
    assert again.origin == str(tmp_path / "cache" / "weights" / entry.file)


def test_torchvision_cache_is_searched_before_downloading(tmp_path, monkeypatch, resnet18_file):
    _, payload, entry = resnet18_file
    _use(monkeypatch, entry)
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / entry.file).write_bytes(payload)
    monkeypatch.setenv("CONVCOACH_WEIGHTS_URL", "http://127.0.0.1:9/")  # would fail if asked
    assert imagenet_weights("resnet18").origin == str(hub / entry.file)


def test_checksum_mismatch_and_truncated_download_leave_nothing(tmp_path, monkeypatch, resnet18_file):
    _, payload, entry = resnet18_file
    _use(monkeypatch, entry)
    with serve({f"/{entry.file}": payload[:-1] + b"x"}) as (url, _):
        monkeypatch.setenv("CONVCOACH_WEIGHTS_URL", url)
        with pytest.raises(ConfigError, match=r"SHA-256 mismatch .*expected " + entry.sha256_prefix):
            imagenet_weights("resnet18")
    assert _cache_files(tmp_path) == []
    with serve({f"/{entry.file}": payload}, truncated={f"/{entry.file}"}) as (url, _):
        monkeypatch.setenv("CONVCOACH_WEIGHTS_URL", url)
        with pytest.raises(ConfigError, match=r"truncated download \(\d+ of \d+ bytes\)"):
            imagenet_weights("resnet18")
    assert _cache_files(tmp_path) == []  # no partial file


def test_no_network_says_where_to_put_the_file(tmp_path, monkeypatch, resnet18_file):
    _, _, entry = resnet18_file
    _use(monkeypatch, entry)
    monkeypatch.setenv("CONVCOACH_WEIGHTS_URL", "http://127.0.0.1:9/")
    with pytest.raises(ConfigError) as error:
        imagenet_weights("resnet18")
    message = str(error.value)
    assert "\n" not in message and "cannot download" in message
    assert message.endswith(
        f"put {entry.file} (from https://download.pytorch.org/models/{entry.file}) in {tmp_path}/cache/weights"
    )


def test_weights_of_another_architecture_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "resnet34.pth"
    torch.save(fake_weights("resnet34"), path)
    monkeypatch.setenv("CONVCOACH_CACHE", str(tmp_path / "cache"))
    code = main(
        ["train", "--model", "resnet18", "--pretrained", str(path), "--data", "digits", "--image-size", "32",
         "--epochs", "1", "--no-report", "--quiet", "--out", str(tmp_path / "run")]
    )  # fmt: skip
    assert code == 2
    expected = r"resnet34.pth: these weights are not resnet18's \(0 missing, 96 unexpected, 0 mismatched tensors; "
    with pytest.raises(ConfigError, match=expected + r"unexpected \['layer1.2.conv1.weight'"):
        from convcoach.models.imagenet import imagenet_architecture
        from convcoach.models.weights import load_backbone

        load_backbone(imagenet_architecture("resnet18"), resolve_weights(str(path), "resnet18"), "fc")
    assert not (tmp_path / "run").exists()  # a run that never started leaves no empty directory


def test_train_from_imagenet_weights_keeps_the_preprocessing(tmp_path, monkeypatch, resnet18_file):
    state, payload, entry = resnet18_file
    _use(monkeypatch, entry)
    out = tmp_path / "run"
    with serve({f"/{entry.file}": payload}) as (url, _):
        monkeypatch.setenv("CONVCOACH_WEIGHTS_URL", url)
        code = main(
            ["train", "--model", "resnet18", "--pretrained", "imagenet", "--data", "digits", "--image-size", "32",
             "--subset", "200", "--epochs", "1", "--precision", "fp32", "--tta", "none", "--no-report", "--quiet",
             "--out", str(out)]
        )  # fmt: skip
    assert code == 0
    checkpoint = load_checkpoint(out / "best.pt")
    # gray 8x8 digits became RGB 32x32 inputs, normalized with ImageNet's statistics, not the data's
    assert checkpoint["model"]["in_shape"] == [3, 32, 32]
    assert checkpoint["normalizer"] == {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    assert checkpoint["config"]["pretrained"] == "imagenet"
    summary = json.loads((out / "summary.json").read_text())
    # no range test on a pretrained start: 0.1x the optimizer's default, as the notes fine-tune
    env = json.loads((out / "env.json").read_text())
    pretrained, scratch = TrainConfig(model="resnet18", pretrained="imagenet"), TrainConfig(model="resnet18")
    assert env["lr_choice"] is None and env["lr"] == pytest.approx(effective_lr(pretrained))
    assert effective_lr(pretrained) == pytest.approx(0.1 * effective_lr(scratch))
    assert summary["init"].startswith("pretrained: ") and summary["init"].endswith(", a new 10-class head")
    # eval reads digits again as 3x32x32 from the checkpoint alone
    assert main(["eval", "--checkpoint", str(out / "best.pt"), "--out", str(tmp_path / "eval")]) == 0


def test_hub_weights_load_through_the_hub_client_and_then_offline(tmp_path, monkeypatch):
    from safetensors.torch import save

    state = fake_weights("resnet18", seed=3)
    config = {
        "architecture": "resnet18",
        "pretrained_cfg": {"mean": [0.5] * 3, "std": [0.25] * 3, "input_size": [3, 160, 160]},
    }
    files = {
        "/timm/resnet18.test/resolve/main/config.json": json.dumps(config).encode(),
        "/timm/resnet18.test/resolve/main/model.safetensors": save(state),
    }
    with serve(files) as (url, requests):
        monkeypatch.setenv("HF_ENDPOINT", url)
        loaded = resolve_weights("hf-hub:timm/resnet18.test", "resnet18")
        assert "GET /timm/resnet18.test/resolve/main/model.safetensors" in requests
    assert loaded.preprocessing.size == 160 and loaded.preprocessing.mean == (0.5, 0.5, 0.5)
    assert torch.equal(loaded.state["fc.weight"], state["fc.weight"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert torch.equal(resolve_weights("hf-hub:timm/resnet18.test").state["conv1.weight"], state["conv1.weight"])
    with pytest.raises(ConfigError, match=r"hf-hub:timm/other: config.json is not in the Hugging Face cache offline"):
        resolve_weights("hf-hub:timm/other")
    with pytest.raises(ConfigError, match=r"are for resnet18, not --model resnet50: use --model resnet18"):
        resolve_weights("hf-hub:timm/resnet18.test", "resnet50")


def test_bad_pretrained_values_are_one_line_errors(tmp_path, capsys):
    cases = {
        ("--model", "cnn", "--pretrained", "imagenet"): "--pretrained needs an ImageNet architecture (--model)",
        ("--model", "resnet18", "--pretrained", "imagenet:resnet50"): "is resnet50's: use --model resnet50",
        ("--model", "resnet18", "--pretrained", "imagenet:resnet99"): "no such ImageNet weights; known: alexnet",
        ("--model", "resnet18", "--pretrained", "hf-hub:resnet"): "give the hub repository",
        ("--model", "resnet18", "--pretrained", str(tmp_path / "none.pth")): "none.pth' not found",
    }
    for flags, expected in cases.items():
        code = main(["train", "--data", "digits", *flags, "--epochs", "1", "--out", str(tmp_path / "r")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and expected in err and len(err.splitlines()) == 1, (flags, err)
    assert np.all([not (tmp_path / "r" / name).exists() for name in ("best.pt", "last.pt")])


def photo_folder(root, classes=3, per_class=24, size=48, seed=0):
    """Colour JPEGs of a few classes: class k is a disc of hue k on a noisy background."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    for k in range(classes):
        folder = root / f"class{k}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 90, size=(size, size, 3)).astype(np.uint8)
            cy, cx = rng.integers(size // 4, 3 * size // 4, size=2)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 < (size // 5) ** 2
            image[disc] = np.roll(np.array([230, 40, 40]), k)
            Image.fromarray(image).save(folder / f"{i}.jpg", quality=90)
    return root


def test_finetune_from_imagenet_weights_on_a_photo_folder(tmp_path, monkeypatch, resnet18_file, capsys):
    _, payload, entry = resnet18_file
    _use(monkeypatch, entry)
    photos = photo_folder(tmp_path / "photos")
    out = tmp_path / "ft"
    with serve({f"/{entry.file}": payload}) as (url, _):
        monkeypatch.setenv("CONVCOACH_WEIGHTS_URL", url)
        code = main(
            ["finetune", "--from", "imagenet:resnet18", "--data", f"imagefolder:{photos}", "--image-size", "64",
             "--epochs", "2", "--batch-size", "16", "--no-report", "--quiet", "--out", str(out)]
        )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["transfer"]["from"] == "imagenet:resnet18"
    assert "imagenet:resnet18: resnet18 from " in summary["transfer"]["input"][0]
    checkpoint = load_checkpoint(out / "best.pt")
    assert checkpoint["model"]["name"] == "resnet18" and checkpoint["model"]["in_shape"] == [3, 64, 64]
    assert checkpoint["normalizer"]["mean"] == list(IMAGENET_MEAN)
    assert main(["eval", "--checkpoint", str(out), "--out", str(tmp_path / "eval")]) == 0
