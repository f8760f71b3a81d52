"""Fine-tuning end to end on tiny blobs: frozen layers stay put, discriminative LRs, stages, channels, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transfer_fixtures
from conftest import make_blobs, small_config

from convcoach.cli import main
from convcoach.models.stages import split_stages
from convcoach.train.loop import Trainer
from convcoach.transfer import discriminative_groups, finetune, freeze, replace_head
from convcoach.transfer.strategy import Similarity, choose_strategy

pretrained, new_data = transfer_fixtures.pretrained, transfer_fixtures.new_data  # shared fixtures


def _state(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "best.pt", map_location="cpu", weights_only=True)["model_state"]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_linear_keeps_every_pretrained_weight_and_batchnorm_statistic(pretrained, new_data, tmp_path):
    summary = finetune(small_config(new_data, tmp_path / "ft", epochs=2, report=False), pretrained, "linear")
    before, after = _state(pretrained), _state(tmp_path / "ft")
    head = [key for key in after if after[key].shape != before[key].shape]
    assert head == ["19.weight", "19.bias"] and after["19.weight"].shape == (4, 128)
    for key in before:
        if key not in head:  # conv/linear weights, BN affine and running_mean/var/num_batches_tracked
            assert torch.equal(before[key], after[key]), key
    assert summary["command"] == "finetune" and summary["model"]["num_classes"] == 4
    assert summary["transfer"]["trainable_parameters"] == 4 * 128 + 4
    assert summary["transfer"]["frozen_norm_layers"] == 5


def test_discriminative_learning_rates_reach_the_optimizer_groups(pretrained, new_data, tmp_path):
    from convcoach.infer import load_trained

    model = load_trained(pretrained).model
    anatomy = split_stages(model)
    head = replace_head(anatomy, 4)
    freeze(model, anatomy, ["fc1"])
    groups = discriminative_groups(model, head, 5e-4, head_lr_mult=2.0, backbone_lr_mult=0.1)
    trainer = Trainer(small_config(new_data, tmp_path / "t", lr=0.05), model=model, param_groups=groups)
    found = {(g["name"], g["weight_decay"]): (g["lr"], len(g["params"])) for g in trainer.optimizer.param_groups}
    # head: weight (decayed) + bias ; backbone = fc1: Linear weight (decayed), Linear bias + BN weight/bias
    assert found == {
        ("head", 5e-4): (pytest.approx(0.1), 1),
        ("head", 0.0): (pytest.approx(0.1), 1),
        ("backbone", 5e-4): (pytest.approx(0.005), 1),
        ("backbone", 0.0): (pytest.approx(0.005), 3),
    }


def test_stages_probes_every_stage_and_the_result_loads_in_eval(pretrained, new_data, tmp_path, capsys):
    code, out, _ = run_cli(
        capsys,
        "finetune",
        "--from",
        str(pretrained),
        "--data",
        f"npz:{new_data}",
        "--strategy",
        "stages",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--augment",
        "none",
        "--quiet",
        "--no-report",
        "--out",
        str(tmp_path / "ft"),
    )
    assert code == 0, out
    summary = json.loads((tmp_path / "ft" / "summary.json").read_text())
    probes = summary["transfer"]["stage_probes"]
    assert [p["stage"] for p in probes] == ["stage1", "stage2", "fc1"]
    assert summary["transfer"]["best_stage"] == max(reversed(probes), key=lambda p: p["val_accuracy"])["stage"]
    assert summary["model"]["name"] == "truncated" and "linear probe val" in out
    code, out, _ = run_cli(capsys, "eval", "--checkpoint", str(tmp_path / "ft"), "--out", str(tmp_path / "ev"))
    assert code == 0
    assert json.loads((tmp_path / "ev" / "summary.json").read_text())["accuracy"] == pytest.approx(
        summary["test_accuracy"]
    )


def test_gray_checkpoint_on_rgb_data_converts_the_first_conv(pretrained, tmp_path, capsys):
    x, y = make_blobs(n_per_class=30, classes=3, seed=5)
    rgb = np.stack([x, x // 2, x], axis=-1)  # (N, H, W, 3)
    np.savez(tmp_path / "rgb.npz", x=rgb, y=y)
    code, out, _ = run_cli(
        capsys,
        "finetune",
        "--from",
        str(pretrained / "best.pt"),
        "--data",
        f"npz:{tmp_path / 'rgb.npz'}",
        "--strategy",
        "full",
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
        str(tmp_path / "ft"),
    )
    assert code == 0
    assert (
        "input: converted the first layer's weights from 1 to 3 input channel(s) (replicated and divided by 3)" in out
    )
    assert json.loads((tmp_path / "ft" / "summary.json").read_text())["model"]["in_shape"] == [3, 12, 12]
    assert run_cli(capsys, "eval", "--checkpoint", str(tmp_path / "ft"), "--out", str(tmp_path / "ev"))[0] == 0


def test_auto_says_why_and_plain_state_dicts_need_the_model_name(pretrained, new_data, tmp_path, capsys):
    plain = tmp_path / "weights.pt"
    torch.save(_state(pretrained), plain)
    flags = [
        "--data",
        f"npz:{new_data}",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--augment",
        "none",
        "--quiet",
        "--no-report",
    ]
    code, _, err = run_cli(capsys, "finetune", "--from", str(plain), *flags, "--out", str(tmp_path / "a"))
    assert code == 2 and "a plain state dict read as --model resnet: give the architecture it was trained with" in err
    code, out, _ = run_cli(
        capsys,
        "finetune",
        "--from",
        str(plain),
        *flags,
        "--model",
        "cnn",
        "--depth",
        "2",
        "--width",
        "8",
        "--out",
        str(tmp_path / "b"),
    )
    assert code == 0
    assert "auto chose '" in out and "(validation)" in out and "lecture table:" in out
    assert "input: no pretrained statistics: normalizer fit on the new training split" in out
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    transfer = summary["transfer"]
    assert transfer["strategy"] == "auto" and summary["data"]["train"] == 92  # 120 blobs - 24 test - 4 validation
    # 23 images per class (< 100): very little data, so linear (similar) or stages (different), by the 1-NN measurement
    similarity = Similarity(**transfer["similarity"])
    expected = choose_strategy(92, 4, similarity, ["stage1", "stage2", "fc1"])
    assert transfer["resolved"] == expected.strategy == ("linear" if similarity.similar else "stages")
    assert transfer["reason"] == expected.reason and expected.reason in out
    assert f"strategy: {expected.strategy} (" in out
    assert transfer["trainable_stages"] == []  # linear, and stages trains a linear classifier too


def best_k(val_accuracy: dict[str, float]) -> int:
    """The k with the highest validation accuracy; a tie goes to the smaller k."""
    return max((int(k) for k in val_accuracy), key=lambda k: (val_accuracy[str(k)], -k))


def test_features_and_knn_commands(pretrained, new_data, tmp_path, capsys):
    code, out, _ = run_cli(
        capsys,
        "features",
        "--checkpoint",
        str(pretrained),
        "--data",
        f"npz:{new_data}",
        "--layer",
        "stage1",
        "--out",
        str(tmp_path / "f.npz"),
    )
    assert code == 0
    with np.load(tmp_path / "f.npz") as saved:
        assert saved["train_features"].shape[1] == 8 and str(saved["layer"]) == "stage1"
        assert len(saved["train_features"]) == len(saved["train_labels"]) and "test_features" in saved.files
    for extra in ([], ["--features", str(pretrained)]):
        code, out, _ = run_cli(
            capsys,
            "knn",
            "--data",
            f"npz:{new_data}",
            "--k",
            "1,3",
            "--distance",
            "l1",
            *extra,
            "--out",
            str(tmp_path / "k"),
        )
        assert code == 0
        summary = json.loads((tmp_path / "k" / "summary.json").read_text())
        assert set(summary["val_accuracy"]) == {"1", "3"}
        assert summary["k"] == best_k(summary["val_accuracy"])
        assert summary["test_accuracy"] > 0.9  # blobs are easy for pixels and features alike
    # 60 images of class 0 and 15 of each other class: a large k outvotes the small classes, so k matters
    x, y = make_blobs(n_per_class=60, classes=4, seed=3)
    keep = np.concatenate([np.flatnonzero(y == 0), *[np.flatnonzero(y == c)[:15] for c in (1, 2, 3)]])
    np.savez(tmp_path / "unbalanced.npz", x=x[keep], y=y[keep])
    code, _, _ = run_cli(
        capsys,
        "knn",
        "--data",
        f"npz:{tmp_path / 'unbalanced.npz'}",
        "--k",
        "40,1,20",
        "--distance",
        "l1",
        "--val-fraction",
        "0.25",
        "--out",
        str(tmp_path / "u"),
    )
    summary = json.loads((tmp_path / "u" / "summary.json").read_text())
    assert code == 0 and summary["data"]["val"] == 21
    accuracy = summary["val_accuracy"]
    assert accuracy["1"] > accuracy["20"] > accuracy["40"]  # 21/21, 19/21, 12/21 measured
    assert summary["k"] == best_k(accuracy) == 1
    code, _, err = run_cli(
        capsys,
        "features",
        "--checkpoint",
        str(pretrained),
        "--data",
        f"npz:{new_data}",
        "--layer",
        "conv9",
        "--out",
        str(tmp_path / "g.npz"),
    )
    assert code == 2 and "unknown layer 'conv9'; layers of this model: stage1, stage2, fc1, penultimate, logits" in err


def test_head_probe_folded_into_the_new_head_predicts_like_the_logistic_regression(pretrained, new_data):
    from convcoach.data import SourceOptions, load_data
    from convcoach.infer import load_trained
    from convcoach.transfer.features import embed
    from convcoach.transfer.stage_probes import probe_head, set_head

    trained = load_trained(pretrained)
    data = load_data(f"npz:{new_data}", SourceOptions(), 0.2)
    head = replace_head(split_stages(trained.model), 4)
    probe = probe_head(trained.model, data, trained.normalizer)
    set_head(head, probe)
    with torch.no_grad():
        for split, expected in ((data.train, probe.train_accuracy), (data.val, probe.val_accuracy)):
            accuracy = (
                (head(embed(trained.model, split, trained.normalizer)).argmax(1) == split.labels).float().mean().item()
            )
            assert accuracy == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strategy", "fine"], "unknown strategy 'fine'; known: linear, top:K, full, stages, auto"),
        (["--head-init", "zeros"], "head_init must be one of probe, random; got 'zeros'"),
        (["--backbone-lr-mult", "0"], "LR multipliers must be finite numbers > 0; got head 1.0, backbone 0.0"),
        (["--head-lr-mult", "nan"], "LR multipliers must be finite numbers > 0; got head nan, backbone 0.1"),
        (["--strategy", "top:7"], "strategy top:7: this network has 3 stages (stage1, stage2, fc1); K must be 1..3"),
        (["--strategy", "linear:1"], "strategy 'linear:1': 'linear' takes no arguments, got 1 (1 would be ignored)"),
    ],
)
def test_finetune_mistakes_are_one_line_errors(pretrained, new_data, tmp_path, capsys, extra, message):
    code, _, err = run_cli(
        capsys,
        "finetune",
        "--from",
        str(pretrained),
        "--data",
        f"npz:{new_data}",
        "--quiet",
        "--no-report",
        "--out",
        str(tmp_path / "x"),
        *extra,
    )
    assert code == 2 and err.strip() == f"convcoach: error: {message}"


def test_architecture_flags_a_checkpoint_overrides_are_warned_about_model_options_too(caplog):
    import logging

    from convcoach import TrainConfig
    from convcoach.transfer.finetune import _warn_ignored_model_fields

    spec = {"name": "cnn", "options": {"depth": 2, "width": 8, "pool": "max"}}
    with caplog.at_level(logging.WARNING, logger="convcoach"):
        _warn_ignored_model_fields(
            TrainConfig(model="cnn", depth=2, model_options={"pool": "max"}), spec
        )  # as trained: silent
        _warn_ignored_model_fields(TrainConfig(model_options={"pool": "avg"}, width=16), spec)
    assert caplog.messages == ["ignoring --model_options, --width: the checkpoint defines the architecture (cnn)"]


def test_a_diverged_finetune_raises_from_the_api_and_exits_1_from_the_cli(pretrained, new_data, tmp_path, capsys):
    from convcoach import TrainingDiverged

    config = small_config(new_data, tmp_path / "ft", epochs=2, report=False, lr=5e5, optimizer="sgd")
    with pytest.raises(TrainingDiverged, match=r"training diverged: .*\(run: .*ft\)") as raised:
        finetune(config, pretrained, "full", head_init="random")
    assert raised.value.summary["status"] == "diverged"
    assert json.loads((tmp_path / "ft" / "summary.json").read_text())["status"] == "diverged"
    code, _, err = run_cli(
        capsys,
        "finetune",
        "--from",
        str(pretrained),
        "--data",
        f"npz:{new_data}",
        "--strategy",
        "full",
        "--head-init",
        "random",
        "--lr",
        "5e5",
        "--optimizer",
        "sgd",
        "--epochs",
        "2",
        "--out",
        str(tmp_path / "cli"),
        "--no-report",
        "--quiet",
    )
    assert code == 1 and "convcoach: training diverged:" in err
