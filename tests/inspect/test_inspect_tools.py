"""Saliency, dead ReLUs, maximally activating images, noise predictions, class visualization,
and the inspect command."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from convcoach.cli import main
from convcoach.data import Normalizer
from convcoach.errors import ConfigError
from convcoach.inspect.dead_relu import dead_relu_report
from convcoach.inspect.layer_lookup import default_feature_layer, resolve_layer
from convcoach.inspect.max_activation import top_activating, unit_activations
from convcoach.inspect.noise import class_visualization, noise_predictions
from convcoach.inspect.saliency import saliency_maps
from convcoach.models import create_model


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: thread hand-offs cost more than they save (~100x on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_saliency_is_zero_on_pixels_the_score_does_not_read():
    linear = nn.Linear(16, 2, bias=False)
    with torch.no_grad():
        linear.weight.zero_()
        linear.weight[1, 5] = -3.0  # class 1 reads only pixel 5 (row 1, column 1)
    model = nn.Sequential(nn.Flatten(), linear)
    maps = saliency_maps(model, torch.randn(2, 1, 4, 4), torch.tensor([1, 0]))
    expected = torch.zeros(4, 4)
    expected[1, 1] = 3.0
    assert torch.equal(maps[0], expected)
    assert torch.equal(maps[1], torch.zeros(4, 4))
    assert linear.weight.grad is None  # the model's weights are untouched


def test_dead_relu_report_counts_channels_that_never_fire():
    conv = nn.Conv2d(1, 4, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 0.0, -1.0, 0.0]).view(4, 1, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, -1.0, 0.0, 1.0]))  # channel 1: always -1 -> dead
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 9, 2), nn.ReLU())
    batches = [(torch.rand(5, 1, 3, 3) + 0.1, torch.zeros(5))]  # positive inputs: channel 2 (-x) is dead too
    rows = dead_relu_report(model, batches)
    assert [r.layer for r in rows] == ["1", "4"]
    assert rows[0].units == 4 and rows[0].dead_units == 2 and rows[0].dead_fraction == 0.5
    assert rows[0].zero_fraction == pytest.approx(0.5)
    assert rows[1].units == 2


def test_top_activating_finds_the_brightest_images_for_a_unit():
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
        model[0].bias.zero_()
    images = torch.zeros(6, 1, 4, 4)
    for index, peak in enumerate([0.1, 0.9, 0.3, 0.7, 0.2, 0.5]):
        images[index, 0, 2, 1] = peak
    assert default_feature_layer(model) == "1"
    activations = unit_activations(model, resolve_layer(model, "1"), [(images[:4], None), (images[4:], None)])
    assert activations.shape == (6, 2)
    values, indices = top_activating(activations, [0], top=3)
    assert indices.tolist() == [[1, 3, 5]]
    assert values.tolist() == [pytest.approx([0.9, 0.7, 0.5])]
    with pytest.raises(ConfigError, match="unit 5 does not exist: this layer has units 0..1"):
        top_activating(activations, [5])
    with pytest.raises(ConfigError, match="unknown layer 'relu'"):
        resolve_layer(model, "relu")


def test_noise_goes_to_the_class_the_bias_favours():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    report = noise_predictions(model, Normalizer([0.5], [0.25]), (1, 4, 4), count=32)
    assert report.class_fraction == [0.0, 1.0, 0.0]
    assert report.mean_confidence == pytest.approx(torch.tensor([0.0, 5.0, 0.0]).softmax(0)[1].item(), rel=1e-5)


def test_gradient_ascent_raises_the_target_class_probability_towards_its_template():
    torch.manual_seed(0)
    model = create_model("linear", (1, 6, 6), 3).eval()
    normalizer = Normalizer([0.5], [0.25])
    _, before = class_visualization(model, normalizer, (1, 6, 6), target=2, steps=0)
    picture, after = class_visualization(model, normalizer, (1, 6, 6), target=2, steps=60)
    assert after > max(0.9, before + 0.5)
    assert picture.shape == (1, 6, 6) and picture.min() >= 0 and picture.max() <= 1
    weight = model[1].weight
    template = (weight[2] - weight[[0, 1]].mean(dim=0)).view(6, 6)
    # pixels the target class weighs up end bright, the ones it weighs down end dark
    assert picture[0][template > 0].mean() > 0.8 and picture[0][template < 0].mean() < 0.2


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    from conftest import make_blobs

    folder = tmp_path_factory.mktemp("inspect")
    x, y = make_blobs(n_per_class=30)
    data = folder / "blobs.npz"
    import numpy as np

    np.savez(data, x=x, y=y)
    code = main(
        [
            "train",
            "--data",
            f"npz:{data}",
            "--model",
            "cnn",
            "--depth",
            "2",
            "--width",
            "8",
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--augment",
            "none",
            "--lr",
            "0.05",
            "--quiet",
            "--no-report",
            "--out",
            str(folder / "run"),
        ]
    )
    assert code == 0 and not (folder / "run" / "report.html").exists()
    return folder / "run"


def check_inspect_numbers(run, entries):
    """The numbers in inspect.json recomputed directly from the checkpoint and its (18-image) test split."""
    from convcoach.infer import load_split, load_trained
    from convcoach.inspect.noise import class_visualizations

    trained = load_trained(run)
    model, split = trained.model, load_split(trained)
    assert len(split) == 18  # --samples 40 scans all of them
    x = trained.normalizer(split.images)
    outputs = {}
    hooks = [
        m.register_forward_hook(lambda mod, inp, out, name=name: outputs.__setitem__(name, out.detach().clone()))
        for name, m in model.named_modules()
        if isinstance(m, nn.ReLU) or name == "12"
    ]
    with torch.no_grad():
        probabilities = model(x).softmax(1)
    for hook in hooks:
        hook.remove()
    dead = entries["dead_relu"]["data"]
    assert dead["samples"] == 18
    expected = []
    for name, out in outputs.items():
        if isinstance(model.get_submodule(name), nn.ReLU):
            fired = (out.transpose(0, 1).flatten(1) > 0).any(dim=1)
            expected.append((name, len(fired), int((~fired).sum()), (out <= 0).double().mean().item()))
    assert [(r["layer"], r["units"], r["dead_units"]) for r in dead["layers"]] == [e[:3] for e in expected]
    assert [r["zero_fraction"] for r in dead["layers"]] == pytest.approx([e[3] for e in expected])
    assert [r["dead_fraction"] for r in dead["layers"]] == pytest.approx([e[2] / e[1] for e in expected])

    top = entries["max_activation"]["data"]
    assert top["layer"] == "12" and top["samples"] == 18
    peaks = outputs["12"].flatten(2).amax(dim=2)  # (18 images, units): the spatial maximum
    for unit in (0, 3):
        values = [row["activation"] for row in top["top"][str(unit)]]
        assert values == sorted(values, reverse=True)
        best = peaks[:, unit].topk(4)
        assert [row["index"] for row in top["top"][str(unit)]] == best.indices.tolist()
        assert values == pytest.approx(best.values.tolist(), rel=1e-5)

    _, visual = class_visualizations(model, trained.normalizer, trained.in_shape, [0, 1, 2], steps=5, seed=0)
    assert list(entries["class_visualization"]["data"]["probability"].values()) == pytest.approx(visual, rel=1e-5)
    first = entries["occlusion"]["data"]["examples"][0]
    assert first["image"] == "test #0: 0" and first["probability"] == pytest.approx(
        probabilities[0, 0].item(), rel=1e-5
    )


def test_inspect_command_writes_a_png_per_inspection_and_the_run_report_includes_them(small_run, capsys):
    code = main(
        [
            "inspect",
            "--checkpoint",
            str(small_run),
            "--units",
            "0,3",
            "--top",
            "4",
            "--samples",
            "40",
            "--noise",
            "16",
            "--steps",
            "5",
            "--patch",
            "4",
            "--stride",
            "2",
        ]
    )
    assert code == 0
    folder = small_run / "inspect"
    keys = ["filters", "occlusion", "saliency", "max_activation", "noise", "class_visualization", "dead_relu"]
    for key in keys:
        assert (folder / f"{key}.png").read_bytes().startswith(b"\x89PNG")
    entries = {e["key"]: e for e in json.loads((folder / "inspect.json").read_text())["findings"]}
    assert list(entries) == keys
    assert entries["filters"]["data"]["count"] == 8
    assert entries["occlusion"]["data"]["patch"] == 4 and entries["occlusion"]["data"]["stride"] == 2
    assert (
        list(entries["max_activation"]["data"]["top"]) == ["0", "3"]
        and len(entries["max_activation"]["data"]["top"]["0"]) == 4
    )
    assert sum(entries["noise"]["data"]["class_fraction"].values()) == pytest.approx(1.0)
    assert (folder / "inspect.html").is_file()
    check_inspect_numbers(small_run, entries)
    capsys.readouterr()
    assert main(["report", str(small_run)]) == 0
    html = (small_run / "report.html").read_text()
    for anchor in ("filters", "occlusion", "saliency", "max-activation", "noise", "class-visualization", "dead-relu"):
        assert html.count(f'<section id="{anchor}">') == 1


def test_inspect_examples_and_image_choose_what_occlusion_and_saliency_look_at(small_run, tmp_path, capsys):
    from PIL import Image

    from convcoach.infer import load_split, load_trained

    quick = [
        "--checkpoint",
        str(small_run),
        "--samples",
        "10",
        "--noise",
        "4",
        "--steps",
        "0",
        "--patch",
        "4",
        "--stride",
        "4",
    ]
    assert main(["inspect", *quick, "--examples", "2", "--out", str(tmp_path / "ex")]) == 0
    entries = {e["key"]: e for e in json.loads((tmp_path / "ex" / "inspect.json").read_text())["findings"]}
    # one image per class in split order: the first 0 is test #0, the first 1 is test #4
    assert [row["image"] for row in entries["occlusion"]["data"]["examples"]] == ["test #0: 0", "test #4: 1"]
    assert len(entries["saliency"]["data"]["max"]) == 2

    trained = load_trained(small_run)
    image = load_split(trained).images[1]  # (1, 12, 12) uint8, written as a grayscale PNG
    Image.fromarray(image[0].numpy()).save(tmp_path / "mine.png")
    with torch.no_grad():
        probabilities = trained.model(trained.normalizer(image[None])).softmax(1)[0]
    predicted = int(probabilities.argmax())
    assert main(["inspect", *quick, "--image", str(tmp_path / "mine.png"), "--out", str(tmp_path / "img")]) == 0
    entries = {e["key"]: e for e in json.loads((tmp_path / "img" / "inspect.json").read_text())["findings"]}
    (row,) = entries["occlusion"]["data"]["examples"]
    assert row["image"] == f"mine.png: predicted {predicted}"
    assert row["probability"] == pytest.approx(probabilities[predicted].item(), rel=1e-5)
    assert len(entries["saliency"]["data"]["max"]) == 1
    capsys.readouterr()


def test_inspect_rejects_bad_options_with_one_line(small_run, capsys):
    assert (
        main(
            [
                "inspect",
                "--checkpoint",
                str(small_run),
                "--layer",
                "nope",
                "--samples",
                "10",
                "--steps",
                "1",
                "--noise",
                "4",
            ]
        )
        == 2
    )
    assert "unknown layer 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error: checked at parse time, exit code 2
        main(["inspect", "--checkpoint", str(small_run), "--patch", "0"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "convcoach inspect: error: argument --patch: must be >= 1, got 0 (usage: convcoach inspect --help)"
    )
    assert main(["inspect", "--checkpoint", str(small_run), "--units", "a,b"]) == 2
    assert "--units must be comma-separated integers, got 'a,b'" in capsys.readouterr().err
