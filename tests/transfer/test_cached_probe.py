"""The cached linear probe: one backbone pass per split and view, cached on disk under a key of
backbone + images + preprocessing; the head fit in seconds; gradual unfreezing; the BatchNorm statement."""

from __future__ import annotations

import json

import pytest
import torch
import transfer_fixtures
from conftest import make_blobs, small_config

from convcoach.cli import main
from convcoach.data import Normalizer, Split
from convcoach.infer import evaluate_trained, load_trained
from convcoach.models import create_model
from convcoach.transfer import finetune
from convcoach.transfer.feature_cache import backbone_digest, cached_features, forward_features

pretrained, new_data = transfer_fixtures.pretrained, transfer_fixtures.new_data  # shared fixtures


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVCOACH_CACHE", str(tmp_path / "cache"))


def test_features_are_cached_by_backbone_images_and_preprocessing(tmp_path):
    torch.manual_seed(0)
    model = create_model("cnn", (1, 12, 12), 3, depth=2, width=8).eval()
    images = torch.from_numpy(make_blobs(n_per_class=10)[0][:, None])
    split = Split(images, torch.zeros(len(images), dtype=torch.long))
    norm = Normalizer([0.2], [0.3])
    first = cached_features(model, split, norm, precision="fp32")
    again = cached_features(model, split, norm, precision="fp32")
    assert not first.hit and again.hit and first.path == again.path and again.seconds == 0.0
    assert torch.equal(first.features, again.features)
    assert torch.allclose(first.features, forward_features(model, images, norm, precision="fp32"))
    assert first.features.shape == (30, 128)  # the penultimate layer
    # another normalization, other images, a changed backbone weight, an augmented view: new entries
    assert cached_features(model, split, Normalizer([0.5], [0.3]), precision="fp32").path != first.path
    other = Split(images.flip(-1), split.labels)
    assert cached_features(model, other, norm, precision="fp32").path != first.path
    view = cached_features(model, split, norm, view=1, augment=["hflip"], precision="fp32")
    assert view.path != first.path and not torch.equal(view.features, first.features)
    digest = backbone_digest(model)
    with torch.no_grad():
        model[-1].weight.add_(1.0)  # the head is not part of the key: the probe replaces it
    assert backbone_digest(model) == digest
    with torch.no_grad():
        model[0].weight.add_(1.0)
    assert backbone_digest(model) != digest
    # a damaged cache entry is recomputed, not trusted
    first.path.write_bytes(b"not a tensor file")
    assert not cached_features(model, split, norm, precision="fp32").hit


def test_cached_linear_probe_run_is_a_normal_run_and_reuses_the_cache(pretrained, new_data, tmp_path):
    config = small_config(new_data, tmp_path / "ft", report=False)
    summary = finetune(config, pretrained, "linear")
    probe = summary["transfer"]["cached_probe"]
    # train + val + test forwarded once, 3 feature files, a head that separates the blobs
    assert probe["cache_hits"] == 0 and probe["images_forwarded"] == 120 and len(probe["cache_files"]) == 3
    assert summary["epochs_run"] == 0 and summary["test_accuracy"] >= 0.9
    assert summary["transfer"]["norm_stats"].startswith("5 BatchNorm layer(s) in frozen stages keep their pretrained")
    trained = load_trained(tmp_path / "ft")
    evaluation = evaluate_trained(trained)
    assert evaluation.accuracy == pytest.approx(summary["test_accuracy"], abs=1 / 24)
    again = finetune(small_config(new_data, tmp_path / "ft2", report=False), pretrained, "linear")
    assert again["transfer"]["cached_probe"]["cache_hits"] == 3
    assert again["transfer"]["cached_probe"]["images_forwarded"] == 0
    assert again["test_accuracy"] == summary["test_accuracy"]


def test_augmented_views_multiply_the_training_features(pretrained, new_data, tmp_path, capsys):
    code = main(
        ["finetune", "--from", str(pretrained), "--data", f"npz:{new_data}", "--strategy", "linear",
         "--views", "2", "--augment", "hflip,translate:1", "--no-report", "--quiet", "--out", str(tmp_path / "v")]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads((tmp_path / "v" / "summary.json").read_text())
    train = summary["data"]["train"]
    assert summary["transfer"]["cached_probe"]["train_features"] == [3 * train, 128]
    assert f"head fit on {3 * train} x 128 features" in out and "BatchNorm: 5 BatchNorm layer(s)" in out
    assert main(["finetune", "--from", str(pretrained), "--data", f"npz:{new_data}", "--strategy", "linear",
                 "--views", "2", "--augment", "none", "--out", str(tmp_path / "w")]) == 2  # fmt: skip
    assert "--views 2 caches augmented views: give the augmentation" in capsys.readouterr().err


def test_linear_epochs_mode_and_gradual_unfreezing_train_through_the_network(pretrained, new_data, tmp_path):
    config = small_config(new_data, tmp_path / "g", epochs=3, lr=0.01, report=False)
    summary = finetune(config, pretrained, "linear", head_init="random", unfreeze_every=1)
    transfer = summary["transfer"]
    assert "cached_probe" not in transfer and summary["epochs_run"] == 3
    assert transfer["unfreeze_order"][:2] == ["fc1", "stage2"]
    before = torch.load(pretrained / "best.pt", weights_only=True)["model_state"]
    after = torch.load(tmp_path / "g" / "best.pt", weights_only=True)["model_state"]
    moved = {key.split(".")[0] for key in before if before[key].shape == after[key].shape}
    moved = {index for index in moved if not torch.equal(before[f"{index}.weight"], after[f"{index}.weight"])}
    # epoch 2 thawed fc1, epoch 3 stage2: layers there moved; the first conv (stage1) never thawed
    assert "0" not in moved and moved, moved
    config = small_config(new_data, tmp_path / "e", epochs=1, report=False)
    plain = finetune(config, pretrained, "linear", linear="epochs")
    assert "cached_probe" not in plain["transfer"] and plain["epochs_run"] == 1
