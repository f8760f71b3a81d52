"""The coach's fault catalogue: short runs on Fashion-MNIST (real images), each with one planted fault
and the cause and fix the diagnosis must give, plus healthy runs that must get no warning.

A third of the catalogue is held out (`held_out=True`): it was written with the rest, before the rules
were tuned, and its score is reported apart (`python benchmarks/coach_faults.py --part held-out`).
Each fault is TrainConfig options over BASE, optionally an npz built from Fashion-MNIST (`data=`) or a
model changed through the API (`model=`)."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

# every run: 2,000 training images (validation and test stay whole), 4 short epochs, monitors every 5 steps
BASE: dict[str, Any] = dict(
    data="fashion-mnist", subset=2000, epochs=4, batch_size=64, monitor_every=5, report=False, quiet=True, seed=0
)


@dataclass
class Fault:
    name: str
    kind: str  # optimization | regularization | initialization | normalization | data | healthy
    options: dict[str, Any]
    expect: set[str]  # causes that count as right (empty: healthy, no warning allowed)
    fix: str | None = None  # a fix of the top finding must contain this (an option, e.g. "--weight-decay")
    what: str = ""  # the fault in words
    held_out: bool = False
    fresh: bool = False  # written after the rules were frozen, run once: a held-out set never looked at before
    data: str | None = None  # a DATASETS key: an npz built from Fashion-MNIST
    api: str | None = None  # a MODELS key: the model built through the API, then changed

    @property
    def part(self) -> str:
        return "fresh" if self.fresh else "held-out" if self.held_out else "tuned"

    @property
    def healthy(self) -> bool:
        return not self.expect


def F(name, kind, expect, fix=None, what="", held_out=False, data=None, api=None, fresh=False, **options) -> Fault:
    return Fault(name, kind, options, set(expect) if expect else set(), fix, what, held_out, fresh, data, api)


CATALOGUE: list[Fault] = [
    # --- optimization ---
    F("sgd_lr_50", "optimization", {"lr_too_high"}, "--lr", "plain SGD at lr 50", optimizer="sgd", lr=50.0),
    F(
        "nesterov_lr_20_cnn",
        "optimization",
        {"lr_too_high"},
        "--lr",
        "a CNN at nesterov lr 20",
        held_out=True,
        model="cnn",
        optimizer="nesterov",
        lr=20.0,
    ),
    F(
        "adam_lr_1",
        "optimization",
        {"lr_too_high"},
        "--lr",
        "Adam at lr 1 (1000x its default)",
        optimizer="adam",
        lr=1.0,
    ),
    F(
        "rmsprop_lr_0.1",
        "optimization",
        {"lr_too_high"},
        "--lr",
        "RMSprop at lr 0.1",
        held_out=True,
        model="cnn",
        optimizer="rmsprop",
        lr=0.1,
    ),
    F(
        "layernorm_cnn_lr_0.8",
        "optimization",
        {"lr_too_high"},
        "--lr",
        "a LayerNorm CNN at the BatchNorm LR 0.8",
        model="cnn",
        norm="layer",
        optimizer="nesterov",
        lr=0.8,
    ),
    F(
        "mlp_nesterov_lr_0.8",
        "optimization",
        {"lr_too_high"},
        "--lr",
        "an MLP at the ResNet's LR 0.8",
        held_out=True,
        model="mlp",
        depth=2,
        width=256,
        optimizer="nesterov",
        lr=0.8,
    ),
    F("sgd_lr_1e-5", "optimization", {"lr_too_low"}, "--lr", "plain SGD at lr 1e-5", optimizer="sgd", lr=1e-5),
    F(
        "adam_lr_1e-6",
        "optimization",
        {"lr_too_low"},
        "--lr",
        "Adam at lr 1e-6",
        model="cnn",
        optimizer="adam",
        lr=1e-6,
    ),
    F(
        "momentum_lr_1e-5",
        "optimization",
        {"lr_too_low"},
        "--lr",
        "momentum SGD at lr 1e-5",
        held_out=True,
        model="mlp",
        optimizer="momentum",
        lr=1e-5,
    ),
    F(
        "constant_lr_plateau",
        "optimization",
        {"plateau"},
        "--schedule",
        "a high constant LR, never decayed",
        model="cnn",
        width=32,
        optimizer="nesterov",
        lr=0.1,
        schedule="constant",
        epochs=10,
    ),
    F(
        "adam_constant_plateau",
        "optimization",
        {"plateau"},
        "--schedule",
        "Adam at a high constant LR",
        held_out=True,
        model="mlp",
        optimizer="adam",
        lr=3e-3,
        schedule="constant",
        epochs=10,
    ),
    F(
        "stopped_early",
        "optimization",
        {"not_converged"},
        "--epochs",
        "SGD stopped while still learning",
        model="cnn",
        optimizer="momentum",
        lr=0.01,
        schedule="constant",
        epochs=2,
    ),
    F(
        "adam_stopped_early",
        "optimization",
        {"not_converged"},
        "--epochs",
        "Adam stopped after 2 epochs",
        held_out=True,
        model="mlp",
        optimizer="adam",
        lr=1e-4,
        schedule="constant",
        epochs=2,
    ),
    F(
        "warmup_longer_than_run",
        "optimization",
        {"warmup_too_long"},
        "--warmup",
        "a warm-up 100x the run: the LR never reaches its peak",
        warmup=10000,
    ),
    F(
        "adam_warmup_too_long",
        "optimization",
        {"warmup_too_long"},
        "--warmup",
        "Adam warming up for 3000 steps",
        held_out=True,
        model="cnn",
        optimizer="adam",
        warmup=3000,
        schedule="constant",
    ),
    F(
        "exploding_mlp_init",
        "optimization",
        {"exploding"},
        "--init",
        "ReLU MLP, init std 0.3 (5x He), no norm",
        model="mlp",
        depth=6,
        width=256,
        norm="none",
        init="normal:0.3",
        optimizer="sgd",
        lr=0.01,
    ),
    F(
        "exploding_cnn_init",
        "optimization",
        {"exploding"},
        "--init",
        "CNN with init std 0.5, no norm",
        held_out=True,
        model="cnn",
        depth=4,
        norm="none",
        init="normal:0.5",
        optimizer="momentum",
        lr=0.01,
    ),
    # --- capacity and regularization ---
    F(
        "weight_decay_0.5",
        "regularization",
        {"over_regularized"},
        "--weight-decay",
        "weight decay 0.5",
        weight_decay=0.5,
        optimizer="nesterov",
    ),
    F(
        "adamw_decay_50",
        "regularization",
        {"over_regularized"},
        "--weight-decay",
        "AdamW with weight decay 50",
        held_out=True,
        model="cnn",
        optimizer="adamw",
        weight_decay=50.0,
    ),
    F("reg_l2_1", "regularization", {"over_regularized"}, "--reg", "an L2 penalty of 1", reg="l2:1"),
    F(
        "reg_l1_cnn",
        "regularization",
        {"over_regularized"},
        "--reg",
        "an L1 penalty of 0.01 on a CNN",
        held_out=True,
        model="cnn",
        optimizer="adam",
        reg="l1:0.01",
    ),
    F(
        "dropout_0.9_mlp",
        "regularization",
        {"over_regularized"},
        "--dropout",
        "dropout 0.9 in an MLP",
        model="mlp",
        optimizer="adam",
        dropout=0.9,
    ),
    F(
        "dropout_0.95_vgg",
        "regularization",
        {"over_regularized"},
        "--dropout",
        "dropout 0.95 in a VGG",
        held_out=True,
        model="vgg",
        dropout=0.95,
    ),
    F(
        "heavy_mixup_small_cnn",
        "regularization",
        {"over_regularized"},
        "--mixup",
        "mixup and cutmix at alpha 4 with label smoothing 0.4 on a narrow CNN",
        model="cnn",
        width=8,
        optimizer="adam",
        mixup=4.0,
        cutmix=4.0,
        label_smoothing=0.4,
    ),
    F(
        "overfit_mlp_300",
        "regularization",
        {"overfitting"},
        "--augment",
        "a wide MLP on 300 images, no augmentation",
        model="mlp",
        width=512,
        optimizer="adam",
        subset=300,
        epochs=30,
        augment=["none"],
        weight_decay=0.0,
        label_smoothing=0.0,
    ),
    F(
        "overfit_resnet_300",
        "regularization",
        {"overfitting"},
        "--augment",
        "the ResNet on 300 images, 25 epochs",
        held_out=True,
        subset=300,
        epochs=25,
        augment=["none"],
        weight_decay=0.0,
        label_smoothing=0.0,
    ),
    F(
        "underfit_width_2",
        "regularization",
        {"underfitting"},
        "--width",
        "a CNN 2 channels wide",
        model="cnn",
        depth=1,
        width=2,
        optimizer="adam",
        lr=3e-3,
        epochs=6,
    ),
    F(
        "underfit_mlp_width_4",
        "regularization",
        {"underfitting"},
        "--width",
        "an MLP 4 units wide",
        held_out=True,
        model="mlp",
        depth=1,
        width=4,
        optimizer="adam",
        lr=3e-3,
        epochs=6,
    ),
    # --- initialization ---
    F(
        "tanh_init_too_small",
        "initialization",
        {"vanishing"},
        "--init",
        "deep tanh MLP, init std 0.01",
        model="mlp",
        depth=8,
        width=128,
        activation="tanh",
        norm="none",
        init="normal:0.01",
        optimizer="sgd",
        lr=0.1,
    ),
    F(
        "cnn_init_too_small",
        "initialization",
        {"vanishing"},
        "--init",
        "deep CNN, init std 0.001, no norm",
        held_out=True,
        model="cnn",
        depth=4,
        norm="none",
        init="normal:0.001",
        optimizer="momentum",
        lr=0.01,
    ),
    F(
        "tanh_init_too_large",
        "initialization",
        {"exploding"},
        "--init",
        "tanh MLP, init std 1: saturated",
        model="mlp",
        depth=6,
        width=256,
        activation="tanh",
        norm="none",
        init="normal:1",
        optimizer="sgd",
        lr=0.01,
    ),
    F(
        "constant_init",
        "initialization",
        {"symmetric_init"},
        "--init",
        "every weight 0.01: all units alike",
        model="mlp",
        norm="none",
        init="constant:0.01",
        optimizer="adam",
    ),
    F(
        "zeros_init_cnn",
        "initialization",
        {"symmetric_init", "dead_units"},
        "--init",
        "a CNN with all-zero weights",
        held_out=True,
        model="cnn",
        norm="none",
        init="zeros",
        optimizer="adam",
    ),
    F(
        "deep_sigmoid",
        "initialization",
        {"vanishing"},
        "--activation",
        "a 10-layer sigmoid MLP",
        model="mlp",
        depth=10,
        width=128,
        activation="sigmoid",
        norm="none",
        optimizer="sgd",
        lr=0.1,
    ),
    F(
        "dead_relu_bias",
        "initialization",
        {"dead_units"},
        "--init",
        "a CNN whose biases start at -3 (API)",
        model="cnn",
        api="negative_bias",
        norm="none",
        optimizer="adam",
    ),
    F(
        "dead_relu_mlp_bias",
        "initialization",
        {"dead_units"},
        "--init",
        "an MLP whose biases start at -3 (API)",
        held_out=True,
        model="mlp",
        api="negative_bias",
        norm="none",
        optimizer="momentum",
        lr=0.01,
    ),
    # --- normalization ---
    F(
        "batchnorm_batch_2",
        "normalization",
        {"bn_small_batch"},
        "--batch-size",
        "BatchNorm at batch size 2",
        batch_size=2,
        subset=400,
        epochs=1,
        optimizer="nesterov",
        lr=0.05,
    ),
    F(
        "batchnorm_batch_4_cnn",
        "normalization",
        {"bn_small_batch"},
        "--batch-size",
        "a BatchNorm CNN at batch 4",
        held_out=True,
        model="cnn",
        batch_size=4,
        subset=600,
        epochs=1,
        optimizer="adam",
    ),
    F(
        "frozen_bn_statistics",
        "normalization",
        {"eval_mismatch"},
        None,
        "BatchNorm momentum 1e-4: the running statistics never leave their start (API)",
        api="frozen_bn",
    ),
    # --- data ---
    F(
        "unnormalized_mlp",
        "data",
        {"inputs_not_normalized"},
        "--preprocess",
        "raw [0, 1] pixels into an MLP",
        model="mlp",
        norm="none",
        preprocess="none",
        optimizer="momentum",
        lr=0.01,
    ),
    F(
        "unnormalized_cnn",
        "data",
        {"inputs_not_normalized"},
        "--preprocess",
        "raw pixels into a CNN without norm",
        held_out=True,
        model="cnn",
        norm="none",
        preprocess="none",
        optimizer="adam",
    ),
    F(
        "label_noise_60",
        "data",
        {"label_noise"},
        "--label-smoothing",
        "60% of the training labels random",
        data="noise60",
        val_fraction=0.2,
    ),
    F(
        "label_noise_45_cnn",
        "data",
        {"label_noise"},
        "--label-smoothing",
        "45% of the training labels random",
        held_out=True,
        data="noise45",
        val_fraction=0.2,
        model="cnn",
        optimizer="adam",
    ),
    F(
        "inverted_test",
        "data",
        {"test_differs"},
        None,
        "the test images are inverted (shifted)",
        data="inverted_test",
        val_fraction=0.2,
    ),
    F(
        "mislabeled_test",
        "data",
        {"test_differs"},
        None,
        "the test labels are shifted by one class",
        held_out=True,
        data="mislabeled_test",
        val_fraction=0.2,
        model="cnn",
        optimizer="adam",
    ),
    F(
        "rare_shirts",
        "data",
        {"class_imbalance", "classes_missed"},
        "Shirt",
        "Shirt at 2% of the other classes' count",
        data="rare_shirt",
        val_fraction=0.2,
    ),
    F(
        "leaked_test",
        "data",
        {"split_leakage"},
        None,
        "the test split is copied from training",
        data="leaked",
        val_fraction=0.2,
    ),
    F(
        "duplicated_train",
        "data",
        {"duplicated_images"},
        None,
        "200 images, each 10 times",
        data="duplicated",
        val_fraction=0.2,
    ),
    F(
        "shuffled_labels",
        "data",
        {"labels_no_signal"},
        None,
        "every training label random",
        data="shuffled",
        val_fraction=0.2,
        epochs=8,
    ),
    F(
        "corrupt_files",
        "data",
        {"files_skipped"},
        None,
        "a folder where 30% of the PNGs are corrupt",
        data="corrupt_folder",
        subset=None,
    ),
    # --- fresh: written after the rules were frozen (post first held-out run), each run once ---
    F(
        "fresh_vgg_sgd_lr_5",
        "optimization",
        {"lr_too_high"},
        "--lr",
        "a VGG at plain SGD lr 5",
        fresh=True,
        model="vgg",
        optimizer="sgd",
        lr=5.0,
    ),
    F(
        "fresh_adamw_lr_0.3_mlp",
        "optimization",
        {"lr_too_high"},
        "--lr",
        "AdamW at lr 0.3 on an MLP",
        fresh=True,
        model="mlp",
        optimizer="adamw",
        lr=0.3,
    ),
    F(
        "fresh_vgg_sgd_lr_1e-6",
        "optimization",
        {"lr_too_low"},
        "--lr",
        "a VGG at plain SGD lr 1e-6",
        fresh=True,
        model="vgg",
        optimizer="sgd",
        lr=1e-6,
    ),
    F(
        "fresh_resnet_one_epoch",
        "optimization",
        {"not_converged"},
        "--epochs",
        "one-and-a-bit epochs of momentum SGD at a constant LR on 4,000 images",
        fresh=True,
        subset=4000,
        epochs=2,
        optimizer="momentum",
        lr=0.01,
        schedule="constant",
    ),
    F(
        "fresh_mlp_decay_2",
        "regularization",
        {"over_regularized"},
        "--weight-decay",
        "an MLP with weight decay 2",
        fresh=True,
        model="mlp",
        optimizer="momentum",
        lr=0.05,
        weight_decay=2.0,
    ),
    F(
        "fresh_label_smoothing_0.8",
        "regularization",
        {"over_regularized"},
        "--label-smoothing",
        "label smoothing 0.8 on a narrow CNN",
        fresh=True,
        model="cnn",
        width=8,
        optimizer="adam",
        label_smoothing=0.8,
    ),
    F(
        "fresh_cnn_init_1e-4",
        "initialization",
        {"vanishing"},
        "--init",
        "a CNN with init std 1e-4, no norm",
        fresh=True,
        model="cnn",
        depth=3,
        norm="none",
        init="normal:0.0001",
        optimizer="sgd",
        lr=0.05,
    ),
    F(
        "fresh_mlp_constant_init",
        "initialization",
        {"symmetric_init"},
        "--init",
        "every MLP weight -0.02",
        fresh=True,
        model="mlp",
        norm="none",
        init="constant:-0.02",
        optimizer="momentum",
        lr=0.01,
    ),
    F(
        "fresh_vgg_batch_2",
        "normalization",
        {"bn_small_batch"},
        "--batch-size",
        "a BatchNorm VGG at batch 2",
        fresh=True,
        model="vgg",
        batch_size=2,
        subset=300,
        epochs=1,
        optimizer="adam",
    ),
    F(
        "fresh_shifted_test",
        "data",
        {"test_differs"},
        None,
        "test images rolled 8 pixels right",
        fresh=True,
        data="rolled_test",
        val_fraction=0.2,
    ),
    F(
        "fresh_label_noise_70_mlp",
        "data",
        {"label_noise"},
        "--label-smoothing",
        "70% of the training labels random",
        fresh=True,
        data="noise70",
        val_fraction=0.2,
        model="mlp",
        optimizer="adam",
    ),
    F(
        "fresh_partial_leak",
        "data",
        {"split_leakage"},
        None,
        "30% of the test split copied from training",
        fresh=True,
        data="leaked30",
        val_fraction=0.2,
    ),
    F(
        "fresh_duplicated_cnn",
        "data",
        {"duplicated_images"},
        None,
        "100 images, each 20 times, into a CNN",
        fresh=True,
        data="duplicated100",
        val_fraction=0.2,
        model="cnn",
        optimizer="adam",
    ),
    F(
        "fresh_rare_bags",
        "data",
        {"class_imbalance", "classes_missed"},
        "Bag",
        "Bag at 3% of the other classes",
        fresh=True,
        data="rare_bag",
        val_fraction=0.2,
    ),
    F(
        "fresh_unnormalized_mlp_adam",
        "data",
        {"inputs_not_normalized"},
        "--preprocess",
        "raw pixels into an MLP without norm, Adam",
        fresh=True,
        model="mlp",
        norm="none",
        preprocess="none",
        optimizer="adam",
    ),
    F("fresh_healthy_resnet_adam", "healthy", set(), what="the ResNet with Adam", fresh=True, optimizer="adam"),
    F(
        "fresh_healthy_mlp_defaults",
        "healthy",
        set(),
        what="an MLP with every other option at its default (lr auto)",
        fresh=True,
        model="mlp",
        epochs=5,
    ),
    F(
        "fresh_healthy_vgg_translate",
        "healthy",
        set(),
        what="a VGG with translate augmentation",
        fresh=True,
        model="vgg",
        augment=["hflip", "translate:2"],
        epochs=5,
    ),
    F(
        "fresh_healthy_cnn_rmsprop",
        "healthy",
        set(),
        what="a CNN with RMSprop",
        fresh=True,
        model="cnn",
        optimizer="rmsprop",
        epochs=5,
    ),
    # --- fresh, second set (session 20): options no earlier fault touched; run once before any rule change ---
    F(
        "fresh2_clip_1e-4",
        "optimization",
        {"lr_too_low", "not_converged"},
        "--clip-grad",
        "Nesterov SGD with every gradient clipped to norm 1e-4",
        fresh=True,
        optimizer="nesterov",
        clip_grad=1e-4,
    ),
    F(
        # written with the --augment strength rule, after the second fresh set's first run
        "augment_rotate_180",
        "regularization",
        {"over_regularized", "underfitting"},
        "--augment",
        "flips and rotations of up to 180 degrees",
        augment=["hflip", "rotate:180"],
    ),
    F(
        "augment_translate_12_cnn",
        "regularization",
        {"over_regularized", "underfitting"},
        "--augment",
        "a CNN with shifts of up to 12 px on 28-px images",
        model="cnn",
        optimizer="adam",
        augment=["hflip", "translate:12"],
    ),
    F(
        # written after the second fresh set's first run, which had "exp:0.5" here: exp's gamma is per epoch,
        # so that run ended at 1/16 of its peak LR and was no fault (the coach called it healthy)
        "exp_schedule_0.001",
        "optimization",
        {"lr_too_low", "not_converged", "plateau"},
        "--schedule",
        "Nesterov SGD with the LR cut 1000x every epoch (exp:0.001)",
        optimizer="nesterov",
        schedule="exp:0.001",
    ),
    F(
        "fresh2_momentum_0.999",
        "optimization",
        {"lr_too_high", "exploding"},
        "--momentum",
        "momentum SGD at lr 0.1 with momentum 0.999 (a 1000x effective step)",
        fresh=True,
        optimizer="momentum",
        lr=0.1,
        momentum=0.999,
    ),
    F(
        "fresh2_adagrad_lr_1e-5",
        "optimization",
        {"lr_too_low"},
        "--lr",
        "Adagrad at lr 1e-5",
        fresh=True,
        optimizer="adagrad",
        lr=1e-5,
    ),
    F(
        "fresh2_accumulate_32",
        "optimization",
        {"not_converged", "too_short"},
        None,
        "32 micro-batches of 64 per step: 4 optimizer steps in the whole run",
        fresh=True,
        accumulate=32,
    ),
    F(
        "fresh2_full_batch_cnn",
        "optimization",
        {"not_converged", "too_short"},
        None,
        "a CNN with the whole 2,000-image subset as one batch: 4 steps",
        fresh=True,
        model="cnn",
        optimizer="nesterov",
        batch_size=2000,
    ),
    F(
        "fresh2_input_noise_3",
        "regularization",
        {"over_regularized", "underfitting"},
        "--input-noise",
        "Gaussian input noise of std 3 (normalized units)",
        fresh=True,
        input_noise=3.0,
    ),
    F(
        "fresh2_cutout_24",
        "regularization",
        {"over_regularized", "underfitting"},
        "--cutout",
        "cutout of a 24-px square on 28-px images",
        fresh=True,
        cutout=24,
    ),
    F(
        "fresh2_dropconnect_0.9_mlp",
        "regularization",
        {"over_regularized", "underfitting"},
        "--dropconnect",
        "an MLP with DropConnect at 0.9",
        fresh=True,
        model="mlp",
        optimizer="adam",
        dropconnect=0.9,
    ),
    F(
        "fresh2_max_norm_0.01_mlp",
        "regularization",
        {"over_regularized", "underfitting"},
        "--max-norm",
        "an MLP whose units' weight vectors are capped at norm 0.01",
        fresh=True,
        model="mlp",
        optimizer="adam",
        max_norm=0.01,
    ),
    F(
        "fresh2_stochastic_depth_0.9",
        "regularization",
        {"over_regularized", "underfitting"},
        "--stochastic-depth",
        "the ResNet dropping its residual blocks with probability up to 0.9",
        fresh=True,
        stochastic_depth=0.9,
        epochs=5,
    ),
    F(
        "fresh2_healthy_resnet_rotate",
        "healthy",
        set(),
        what="the ResNet with flips and 10° rotations",
        fresh=True,
        augment=["hflip", "rotate:10"],
    ),
    F(
        "fresh2_healthy_cnn_cosine",
        "healthy",
        set(),
        what="a CNN, Nesterov SGD, cosine schedule",
        fresh=True,
        model="cnn",
        optimizer="nesterov",
        schedule="cosine",
        epochs=5,
    ),
    F(
        "fresh2_healthy_mlp_adamw_dropout",
        "healthy",
        set(),
        what="an MLP with AdamW and dropout 0.2",
        fresh=True,
        model="mlp",
        optimizer="adamw",
        dropout=0.2,
        epochs=5,
    ),
    F(
        "fresh2_healthy_vgg_adam",
        "healthy",
        set(),
        what="a VGG with Adam",
        fresh=True,
        model="vgg",
        optimizer="adam",
        epochs=5,
    ),
    F("fresh2_healthy_resnet_batch_128", "healthy", set(), what="the ResNet at batch 128", fresh=True, batch_size=128),
    # --- fresh, third set (session 20): written after the rules above were frozen, before running it ---
    # (a step schedule that multiplies the LR by 10 was planned here: convcoach refuses it, exit 2)
    F(
        "fresh3_resnet_no_norm",
        "optimization",
        {"lr_too_high", "exploding"},
        "--lr",
        "the ResNet without BatchNorm at Nesterov SGD lr 0.8 (its BatchNorm setting)",
        fresh=True,
        norm="none",
        optimizer="nesterov",
        lr=0.8,
    ),
    F(
        "fresh3_rmsprop_lr_1e-6",
        "optimization",
        {"lr_too_low"},
        "--lr",
        "RMSprop at lr 1e-6",
        fresh=True,
        optimizer="rmsprop",
        lr=1e-6,
    ),
    F(
        "fresh3_clip_1e-5_cnn",
        "optimization",
        {"lr_too_low", "not_converged"},
        "--clip-grad",
        "a CNN with momentum SGD at lr 0.05 and gradients clipped to norm 1e-5",
        fresh=True,
        model="cnn",
        optimizer="momentum",
        lr=0.05,
        clip_grad=1e-5,
    ),
    F(
        "fresh3_accumulate_16_cnn",
        "optimization",
        {"not_converged", "too_short"},
        None,
        "a CNN with 16 micro-batches of 128 per step: 4 steps in the run",
        fresh=True,
        model="cnn",
        optimizer="adam",
        batch_size=128,
        accumulate=16,
    ),
    F(
        "fresh3_warmup_500_cnn",
        "optimization",
        {"warmup_too_long"},
        "--warmup",
        "a CNN with a 500-iteration warm-up in a 124-iteration run",
        fresh=True,
        model="cnn",
        optimizer="nesterov",
        warmup=500,
    ),
    F(
        "fresh3_vgg_rotate_90",
        "regularization",
        {"over_regularized", "underfitting"},
        "--augment",
        "a VGG with flips and rotations of up to 90 degrees",
        fresh=True,
        model="vgg",
        augment=["hflip", "rotate:90"],
    ),
    F(
        "fresh3_randaugment_4_30_cnn",
        "regularization",
        {"over_regularized", "underfitting"},
        "--augment",
        "a CNN with RandAugment at 4 ops of magnitude 30",
        fresh=True,
        model="cnn",
        optimizer="adam",
        augment=["randaugment:4:30"],
    ),
    F(
        "fresh3_label_smoothing_0.6_cnn",
        "regularization",
        {"over_regularized"},
        "--label-smoothing",
        "a CNN with label smoothing 0.6",
        fresh=True,
        model="cnn",
        optimizer="adam",
        label_smoothing=0.6,
    ),
    F(
        "fresh3_init_normal_1_mlp",
        "initialization",
        {"exploding", "lr_too_high"},
        "--init",
        "an MLP initialized from N(0, 1)",
        fresh=True,
        model="mlp",
        optimizer="adam",
        init="normal:1",
    ),
    F(
        "fresh3_batch_4_resnet",
        "normalization",
        {"bn_small_batch"},
        "--norm",
        "the BatchNorm ResNet at batch 4",
        fresh=True,
        batch_size=4,
        epochs=1,
    ),
    F(
        "fresh3_healthy_resnet_erase",
        "healthy",
        set(),
        what="the ResNet with flips and random erasing",
        fresh=True,
        augment=["hflip", "erase:0.5"],
    ),
    F(
        "fresh3_healthy_cnn_step",
        "healthy",
        set(),
        what="a CNN, Nesterov SGD, step schedule at epochs 2 and 3",
        fresh=True,
        model="cnn",
        optimizer="nesterov",
        schedule="step:2,3",
        epochs=5,
    ),
    F(
        "fresh3_healthy_resnet_momentum_0.99",
        "healthy",
        set(),
        what="the ResNet, Nesterov at momentum 0.99, lr 0.05",
        fresh=True,
        optimizer="nesterov",
        momentum=0.99,
        lr=0.05,
    ),
    F(
        "fresh3_healthy_resnet_clip_1",
        "healthy",
        set(),
        what="the ResNet with gradients clipped at norm 1",
        fresh=True,
        clip_grad=1.0,
    ),
    F(
        "fresh3_healthy_mlp_sgd_cosine",
        "healthy",
        set(),
        what="an MLP, Nesterov SGD at lr 0.05, cosine schedule",
        fresh=True,
        model="mlp",
        optimizer="nesterov",
        lr=0.05,
        schedule="cosine",
        epochs=5,
    ),
    # --- fresh, fourth set (session 20): written after the final rules of the session, before running it ---
    F(
        "fresh4_adamw_lr_0.05_vgg",
        "optimization",
        {"lr_too_high"},
        "--lr",
        "a VGG at AdamW lr 0.05",
        fresh=True,
        model="vgg",
        optimizer="adamw",
        lr=0.05,
    ),
    F(
        "fresh4_sgd_lr_1e-4_cnn",
        "optimization",
        {"lr_too_low"},
        "--lr",
        "a CNN at plain SGD lr 1e-4",
        fresh=True,
        model="cnn",
        optimizer="sgd",
        lr=1e-4,
    ),
    F(
        "fresh4_clip_1e-3_resnet_sgd",
        "optimization",
        {"lr_too_low", "not_converged"},
        "--clip-grad",
        "the ResNet at plain SGD lr 0.1 with gradients clipped to norm 1e-3",
        fresh=True,
        optimizer="sgd",
        lr=0.1,
        clip_grad=1e-3,
    ),
    F(
        "fresh4_momentum_0.995_lr_0.5",
        "optimization",
        {"lr_too_high", "exploding"},
        "--momentum",
        "the ResNet at Nesterov lr 0.5 with momentum 0.995",
        fresh=True,
        optimizer="nesterov",
        lr=0.5,
        momentum=0.995,
    ),
    F(
        "fresh4_weight_decay_0.05_cnn",
        "regularization",
        {"over_regularized"},
        "--weight-decay",
        "a CNN with Nesterov SGD and weight decay 0.05",
        fresh=True,
        model="cnn",
        optimizer="nesterov",
        weight_decay=0.05,
    ),
    F(
        "fresh4_dropout_0.85_cnn",
        "regularization",
        {"over_regularized", "underfitting"},
        "--dropout",
        "a CNN with Adam and dropout 0.85",
        fresh=True,
        model="cnn",
        optimizer="adam",
        dropout=0.85,
    ),
    F(
        "fresh4_elastic_10_cnn",
        "regularization",
        {"over_regularized", "underfitting"},
        "--augment",
        "a CNN with elastic deformations of 10 px",
        fresh=True,
        model="cnn",
        optimizer="adam",
        augment=["elastic:10"],
    ),
    F(
        "fresh4_batch_2_cnn",
        "normalization",
        {"bn_small_batch"},
        "--norm",
        "a BatchNorm CNN at batch 2, one epoch",
        fresh=True,
        model="cnn",
        optimizer="adam",
        batch_size=2,
        epochs=1,
    ),
    F(
        "fresh4_label_noise_50_cnn",
        "data",
        {"label_noise"},
        None,
        "a CNN on training labels half replaced at random",
        fresh=True,
        data="noise50",
        model="cnn",
        optimizer="adam",
    ),
    F(
        "fresh4_rare_coats",
        "data",
        {"class_imbalance", "classes_missed"},
        None,
        "the ResNet with coats at a tiny share of the training split",
        fresh=True,
        data="rare_coat",
    ),
    F(
        "fresh4_healthy_vgg_nesterov_erase",
        "healthy",
        set(),
        what="a VGG, Nesterov SGD, flips and erasing",
        fresh=True,
        model="vgg",
        optimizer="nesterov",
        augment=["hflip", "erase:0.5"],
        epochs=5,
    ),
    F(
        "fresh4_healthy_cnn_adamw_translate",
        "healthy",
        set(),
        what="a CNN, AdamW, flips and 2-px shifts",
        fresh=True,
        model="cnn",
        optimizer="adamw",
        augment=["hflip", "translate:2"],
        epochs=5,
    ),
    F(
        "fresh4_healthy_resnet_smoothing_0.2",
        "healthy",
        set(),
        what="the ResNet with label smoothing 0.2",
        fresh=True,
        label_smoothing=0.2,
    ),
    F(
        "fresh4_healthy_mlp_noise_0.1",
        "healthy",
        set(),
        what="an MLP, Adam, input noise 0.1",
        fresh=True,
        model="mlp",
        optimizer="adam",
        input_noise=0.1,
        epochs=5,
    ),
    F(
        "fresh4_healthy_resnet_depth_drop",
        "healthy",
        set(),
        what="the ResNet with stochastic depth 0.1",
        fresh=True,
        stochastic_depth=0.1,
    ),
    # --- fresh, fifth set (session 21): options no set had touched, and a second dataset (digits); written
    # before its first run ---
    F(
        # planned as a fault (eval_mismatch, "--ema"); its first run was called healthy, and rightly: the
        # average's decay warms up as min(decay, (1 + n) / (10 + n)), so at 128 steps it is ~0.93, not 0.9999
        "fresh5_ema_0.9999",
        "healthy",
        set(),
        what="the ResNet validated through a weight average of decay 0.9999 (warmed up) over a 128-step run",
        fresh=True,
        ema=0.9999,
    ),
    F(
        "fresh5_base_batch_1",
        "optimization",
        {"lr_too_high", "exploding"},
        "--base-batch-size",
        "the ResNet at Nesterov lr 0.1 scaled to batch 64 from a base batch of 1 (peak 6.4)",
        fresh=True,
        optimizer="nesterov",
        lr=0.1,
        base_batch_size=1,
    ),
    F(
        "fresh5_muon_lr_3",
        "optimization",
        {"lr_too_high", "exploding"},
        "--muon-lr",
        "the default ResNet with Muon's relative step at 3",
        fresh=True,
        muon_lr=3.0,
    ),
    F(
        "fresh5_momentum_ema_lr_3e-4",
        "optimization",
        {"lr_too_low", "not_converged"},
        "--lr",
        "the ResNet at momentum 0.9 in the ema form (steps 10x smaller than the sum form) at lr 3e-4",
        fresh=True,
        optimizer="momentum",
        momentum_convention="ema",
        lr=3e-4,
    ),
    F(
        "fresh5_patience_1",
        "optimization",
        {"not_converged", "too_short"},
        "--patience",
        "a CNN stopped by patience 1 with min_delta 0.05 while it still learned",
        fresh=True,
        model="cnn",
        optimizer="adam",
        epochs=10,
        patience=1,
        min_delta=0.05,
    ),
    F(
        "fresh5_time_budget_3s",
        "optimization",
        {"not_converged", "too_short"},
        "--time-budget",
        "the ResNet given a 3-second time budget",
        fresh=True,
        time_budget=0.05,
    ),
    F(
        "fresh5_digits_sgd_lr_30",
        "optimization",
        {"lr_too_high", "exploding"},
        "--lr",
        "a CNN on sklearn's digits at plain SGD lr 30",
        fresh=True,
        data="digits",
        subset=None,
        model="cnn",
        optimizer="sgd",
        lr=30.0,
    ),
    F(
        "fresh5_digits_mlp_width_2",
        "regularization",
        {"underfitting"},
        "--width",
        "an MLP 2 units wide on sklearn's digits",
        fresh=True,
        data="digits",
        subset=None,
        model="mlp",
        depth=1,
        width=2,
        optimizer="adam",
        lr=3e-3,
        epochs=8,
    ),
    F(
        "fresh5_cutmix_2_small_cnn",
        "regularization",
        {"over_regularized", "underfitting"},
        "--cutmix",
        "a CNN 8 channels wide with CutMix at alpha 2 on every batch",
        fresh=True,
        model="cnn",
        width=8,
        optimizer="adam",
        cutmix=2.0,
    ),
    F(
        "fresh5_dim_test",
        "data",
        {"test_differs"},
        None,
        "test images at 40% contrast on a light grey background",
        fresh=True,
        data="dim_test",
    ),
    F(
        "fresh5_healthy_digits_cnn",
        "healthy",
        set(),
        what="a CNN with Adam on sklearn's digits",
        fresh=True,
        data="digits",
        subset=None,
        model="cnn",
        optimizer="adam",
        epochs=6,
    ),
    F(
        "fresh5_healthy_digits_mlp_nesterov",
        "healthy",
        set(),
        what="an MLP with Nesterov SGD on sklearn's digits",
        fresh=True,
        data="digits",
        subset=None,
        model="mlp",
        optimizer="nesterov",
        lr=0.05,
        epochs=8,
    ),
    F(
        "fresh5_healthy_resnet_ema_0.99",
        "healthy",
        set(),
        what="the ResNet validated through a weight average of decay 0.99",
        fresh=True,
        ema=0.99,
    ),
    F(
        "fresh5_healthy_cnn_momentum_ema",
        "healthy",
        set(),
        what="a CNN at momentum 0.9 in the ema form at lr 0.1",
        fresh=True,
        model="cnn",
        optimizer="momentum",
        momentum_convention="ema",
        lr=0.1,
        epochs=5,
    ),
    F(
        "fresh5_healthy_resnet_patience_3",
        "healthy",
        set(),
        what="the ResNet with patience 3 over 6 epochs",
        fresh=True,
        patience=3,
        epochs=6,
    ),
    # --- fresh, sixth set (session 21): written after fresh5's rules, before its first run; half on
    # sklearn's digits (8x8 px), built as npz files like the Fashion-MNIST variants ---
    F(
        "fresh6_digits_label_noise_50",
        "data",
        {"label_noise"},
        None,
        "a CNN on digits with half the training labels replaced at random",
        fresh=True,
        data="digits:noise50",
        subset=None,
        model="cnn",
        optimizer="adam",
        epochs=6,
    ),
    F(
        "fresh6_digits_inverted_test",
        "data",
        {"test_differs"},
        None,
        "a CNN on digits whose test images are inverted",
        fresh=True,
        data="digits:inverted_test",
        subset=None,
        model="cnn",
        optimizer="adam",
        epochs=6,
    ),
    F(
        "fresh6_digits_translate_3",
        "regularization",
        {"over_regularized"},
        "--augment",
        "a CNN on 8-px digits shifted up to 3 px (the usual 2 px is for 28 px)",
        fresh=True,
        data="digits",
        subset=None,
        model="cnn",
        optimizer="adam",
        augment=["translate:3"],
        epochs=6,
    ),
    F(
        "fresh6_digits_rare_3",
        "data",
        {"class_imbalance", "classes_missed"},
        None,
        "a CNN on digits with five training images of the digit 3",
        fresh=True,
        data="digits:rare3",
        subset=None,
        model="cnn",
        optimizer="adam",
        epochs=6,
    ),
    F(
        "fresh6_digits_leaked_test",
        "data",
        {"split_leakage"},
        None,
        "a CNN on digits whose test split is copied from its training images",
        fresh=True,
        data="digits:leaked",
        subset=None,
        model="cnn",
        optimizer="adam",
        epochs=6,
    ),
    F(
        "fresh6_step_schedule_0.001",
        "optimization",
        {"lr_too_low", "not_converged"},
        "--schedule",
        "the ResNet with a step schedule that cuts the LR 1000x after epoch 1",
        fresh=True,
        schedule="step:1:0.001",
    ),
    F(
        "fresh6_vgg_no_norm_lr_0.8",
        "optimization",
        {"lr_too_high", "exploding"},
        "--lr",
        "a VGG without BatchNorm at Nesterov lr 0.8",
        fresh=True,
        model="vgg",
        norm="none",
        optimizer="nesterov",
        lr=0.8,
    ),
    F(
        "fresh6_rmsprop_lr_0.03_cnn",
        "optimization",
        {"lr_too_high"},
        "--lr",
        "a CNN at RMSprop lr 0.03",
        fresh=True,
        model="cnn",
        optimizer="rmsprop",
        lr=0.03,
    ),
    F(
        "fresh6_class_weight_100",
        "data",
        {"classes_missed"},
        "--class-weights",
        "the ResNet with a loss weight of 100 on T-shirts and 1 on the rest",
        fresh=True,
        class_weights=["100"] + ["1"] * 9,
    ),
    F(
        "fresh6_healthy_digits_cnn_translate_1",
        "healthy",
        set(),
        what="a CNN on digits with 1-px shifts",
        fresh=True,
        data="digits",
        subset=None,
        model="cnn",
        optimizer="adam",
        augment=["translate:1"],
        epochs=6,
    ),
    F(
        "fresh6_healthy_resnet_step_schedule",
        "healthy",
        set(),
        what="the ResNet with the LR cut 10x after epochs 2 and 3",
        fresh=True,
        schedule="step:2,3",
    ),
    F(
        "fresh6_healthy_vgg_adamw_3e-3",
        "healthy",
        set(),
        what="a VGG at AdamW lr 3e-3",
        fresh=True,
        model="vgg",
        optimizer="adamw",
        lr=3e-3,
        epochs=5,
    ),
    F(
        "fresh6_healthy_digits_mlp_adam",
        "healthy",
        set(),
        what="an MLP with Adam on digits",
        fresh=True,
        data="digits",
        subset=None,
        model="mlp",
        optimizer="adam",
        epochs=8,
    ),
    # --- fresh, seventh set (session 21): written after fresh6's rule, before its first run ---
    F(
        "fresh7_color_shortcut",
        "data",
        {"test_differs"},
        None,
        "the ResNet on RGB images whose tint gives the class away in training and validation, not in test",
        fresh=True,
        data="color_shortcut",
    ),
    F(
        "fresh7_reg_elastic_1",
        "regularization",
        {"over_regularized"},
        "--reg",
        "a CNN with an elastic-net penalty of 1",
        fresh=True,
        model="cnn",
        optimizer="adam",
        reg="elastic:1",
    ),
    F(
        "fresh7_adagrad_lr_3",
        "optimization",
        {"lr_too_high", "exploding"},
        "--lr",
        "a CNN at Adagrad lr 3",
        fresh=True,
        model="cnn",
        optimizer="adagrad",
        lr=3.0,
    ),
    F(
        "fresh7_linear_sgd_1e-4",
        "optimization",
        {"lr_too_low"},
        "--lr",
        "softmax regression at plain SGD lr 1e-4",
        fresh=True,
        model="linear",
        optimizer="sgd",
        lr=1e-4,
    ),
    F(
        "fresh7_digits_vgg_sgd_lr_50",
        "optimization",
        {"lr_too_high", "exploding"},
        "--lr",
        "a VGG on digits at plain SGD lr 50",
        fresh=True,
        data="digits",
        subset=None,
        model="vgg",
        optimizer="sgd",
        lr=50.0,
    ),
    F(
        "fresh7_digits_duplicated_100",
        "data",
        {"duplicated_images"},
        None,
        "a CNN on digits whose training split is 100 images repeated",
        fresh=True,
        data="digits:duplicated100",
        subset=None,
        model="cnn",
        optimizer="adam",
        epochs=6,
    ),
    F(
        "fresh7_deep_mlp_init_0.01",
        "initialization",
        {"vanishing"},
        "--init",
        "a 6-layer ReLU MLP without norm from N(0, 0.01)",
        fresh=True,
        model="mlp",
        depth=6,
        norm="none",
        optimizer="adam",
        init="normal:0.01",
    ),
    F(
        "fresh7_healthy_cnn_svm_adam",
        "healthy",
        set(),
        what="a CNN with the multiclass SVM loss and Adam",
        fresh=True,
        model="cnn",
        optimizer="adam",
        loss="svm",
        label_smoothing=0.0,
        epochs=5,
    ),
    F(
        "fresh7_healthy_resnet_sampler_balanced",
        "healthy",
        set(),
        what="the ResNet drawing batches class-balanced",
        fresh=True,
        sampler="balanced",
    ),
    F(
        "fresh7_healthy_digits_vgg_adam",
        "healthy",
        set(),
        what="a VGG with Adam on digits",
        fresh=True,
        data="digits",
        subset=None,
        model="vgg",
        optimizer="adam",
        epochs=6,
    ),
    F(
        "fresh7_healthy_color_random",
        "healthy",
        set(),
        what="the ResNet on RGB images tinted at random in every split",
        fresh=True,
        data="color_random",
    ),
    # --- fresh, eighth set (session 21): written after fresh7's rules, before its first run ---
    F(
        "fresh8_digits_batch_512",
        "optimization",
        {"too_short", "not_converged"},
        "--batch-size",
        "a CNN on digits at batch 512: 3 steps an epoch",
        fresh=True,
        data="digits",
        subset=None,
        model="cnn",
        optimizer="adam",
        batch_size=512,
    ),
    F(
        "fresh8_mlp_reg_l1_0.01",
        "regularization",
        {"over_regularized"},
        "--reg",
        "an MLP with an L1 penalty of 0.01",
        fresh=True,
        model="mlp",
        optimizer="adam",
        reg="l1:0.01",
    ),
    F(
        "fresh8_vgg_momentum_lr_1e-5",
        "optimization",
        {"lr_too_low"},
        "--lr",
        "a VGG at momentum SGD lr 1e-5",
        fresh=True,
        model="vgg",
        optimizer="momentum",
        lr=1e-5,
    ),
    F(
        "fresh8_resnet_adam_lr_0.1",
        "optimization",
        {"lr_too_high", "exploding"},
        "--lr",
        "the ResNet at Adam lr 0.1",
        fresh=True,
        optimizer="adam",
        lr=0.1,
    ),
    F(
        "fresh8_digits_label_noise_80",
        "data",
        {"label_noise"},
        None,
        "a CNN on digits with 80% of the training labels replaced at random",
        fresh=True,
        data="digits:noise80",
        subset=None,
        model="cnn",
        optimizer="adam",
        epochs=6,
    ),
    F(
        "fresh8_healthy_mlp_reg_l2",
        "healthy",
        set(),
        what="an MLP with Adam and an L2 penalty of 1e-4",
        fresh=True,
        model="mlp",
        optimizer="adam",
        reg="l2:1e-4",
        epochs=5,
    ),
    F(
        "fresh8_healthy_vgg_nesterov_cosine",
        "healthy",
        set(),
        what="a VGG at Nesterov lr 0.05 with a cosine schedule",
        fresh=True,
        model="vgg",
        optimizer="nesterov",
        lr=0.05,
        schedule="cosine",
        epochs=5,
    ),
    # --- fresh, ninth set (session 22): written after fresh8's rules, before its first run ---
    F(
        "fresh9_swapped_train_labels",
        "data",
        {"test_differs", "classes_missed"},
        None,
        "the ResNet whose training (and so validation) labels swap Trouser and Bag; the test labels are right",
        fresh=True,
        data="swap_trouser_bag",
    ),
    F(
        "fresh9_rotated_test",
        "data",
        {"test_differs"},
        None,
        "the ResNet whose test images are rotated 90 degrees",
        fresh=True,
        data="rotated_test",
    ),
    F(
        "fresh9_pixel_shortcut",
        "data",
        {"test_differs"},
        None,
        "a CNN on training images stamped with a white pixel whose place gives the class away; test clean",
        fresh=True,
        data="pixel_shortcut",
        model="cnn",
        optimizer="adam",
    ),
    F(
        "fresh9_label_noise_30_resnet",
        "data",
        {"label_noise"},
        None,
        "the ResNet with 30% of its training labels replaced at random",
        fresh=True,
        data="noise30",
    ),
    F(
        "fresh9_vgg_sigmoid_no_norm",
        "initialization",
        {"vanishing"},
        None,
        "a VGG with sigmoid activations and no normalization at Nesterov lr 0.05",
        fresh=True,
        model="vgg",
        activation="sigmoid",
        norm="none",
        optimizer="nesterov",
        lr=0.05,
    ),
    F(
        "fresh9_cnn_init_normal_2_gelu",
        "initialization",
        {"exploding", "lr_too_high"},
        "--init",
        "a GELU CNN without normalization initialized from N(0, 2)",
        fresh=True,
        model="cnn",
        activation="gelu",
        norm="none",
        init="normal:2",
        optimizer="adam",
    ),
    F(
        "fresh9_stacked_regularizers",
        "regularization",
        {"over_regularized", "underfitting"},
        None,
        "a CNN 8 wide with dropout 0.5, input noise 1, cutout 12, label smoothing 0.3 and weight decay 5e-3 together",
        fresh=True,
        model="cnn",
        width=8,
        optimizer="adam",
        dropout=0.5,
        input_noise=1.0,
        cutout=12,
        label_smoothing=0.3,
        weight_decay=5e-3,
    ),
    F(
        "fresh9_resnet_adamw_lr_2",
        "optimization",
        {"lr_too_high", "exploding"},
        "--lr",
        "the ResNet at AdamW lr 2",
        fresh=True,
        optimizer="adamw",
        lr=2.0,
    ),
    F(
        "fresh9_digits_resnet_sgd_lr_1e-5",
        "optimization",
        {"lr_too_low"},
        "--lr",
        "the ResNet on digits at plain SGD lr 1e-5",
        fresh=True,
        data="digits",
        subset=None,
        optimizer="sgd",
        lr=1e-5,
    ),
    F(
        "fresh9_mlp_raw_pixels_nesterov",
        "normalization",
        {"inputs_not_normalized"},
        "--preprocess",
        "an MLP on unnormalized [0, 1] pixels at Nesterov lr 0.05",
        fresh=True,
        model="mlp",
        preprocess="none",
        optimizer="nesterov",
        lr=0.05,
    ),
    F(
        "fresh9_cnn_one_epoch_500",
        "optimization",
        {"too_short", "not_converged"},
        None,
        "a CNN trained one epoch on 500 images: 8 steps",
        fresh=True,
        model="cnn",
        subset=500,
        epochs=1,
        optimizer="adam",
    ),
    F(
        "fresh9_healthy_resnet_groupnorm_adamw",
        "healthy",
        set(),
        what="the ResNet with GroupNorm (8 groups) and AdamW at lr 1e-3",
        fresh=True,
        norm="group:8",
        optimizer="adamw",
        lr=1e-3,
    ),
    F(
        "fresh9_healthy_cnn_leaky_cosine",
        "healthy",
        set(),
        what="a leaky-ReLU CNN at Nesterov lr 0.05 with a cosine schedule",
        fresh=True,
        model="cnn",
        activation="leaky_relu",
        optimizer="nesterov",
        lr=0.05,
        schedule="cosine",
        epochs=5,
    ),
    F(
        "fresh9_healthy_digits_resnet",
        "healthy",
        set(),
        what="the default ResNet and recipe on digits",
        fresh=True,
        data="digits",
        subset=None,
    ),
    F(
        "fresh9_healthy_vgg_gelu_adamw",
        "healthy",
        set(),
        what="a GELU VGG at AdamW lr 1e-3",
        fresh=True,
        model="vgg",
        activation="gelu",
        optimizer="adamw",
        lr=1e-3,
        epochs=5,
    ),
    F(
        "fresh9_healthy_mlp_kl_adam",
        "healthy",
        set(),
        what="an MLP with the KL loss and Adam",
        fresh=True,
        model="mlp",
        loss="kl",
        optimizer="adam",
        epochs=5,
    ),
    # --- fresh, tenth set (session 22): written after fresh9's rules, before its first run ---
    F(
        "fresh10_folder_rare_bag",
        "data",
        {"class_imbalance", "classes_missed"},
        None,
        "the ResNet on a folder of PNGs with 3 bags against 80 images of each other class",
        fresh=True,
        data="folder_rare_bag",
        subset=None,
        epochs=6,
    ),
    F(
        "fresh10_test_labels_30_wrong",
        "data",
        {"test_differs"},
        None,
        "the ResNet whose test labels are 30% replaced at random (training labels clean)",
        fresh=True,
        data="test_noise30",
    ),
    F(
        "fresh10_upside_down_train",
        "data",
        {"test_differs"},
        None,
        "the ResNet trained (and validated) on upside-down images, tested on upright ones",
        fresh=True,
        data="vflip_train",
    ),
    F(
        "fresh10_tanh_mlp_sgd_lr_3",
        "optimization",
        {"lr_too_high", "exploding"},
        "--lr",
        "a tanh MLP at plain SGD lr 3",
        fresh=True,
        model="mlp",
        activation="tanh",
        optimizer="sgd",
        lr=3.0,
    ),
    F(
        "fresh10_resnet_warmup_5000",
        "optimization",
        {"warmup_too_long"},
        "--warmup",
        "the default ResNet with a 5000-iteration warm-up in a 124-iteration run",
        fresh=True,
        warmup=5000,
    ),
    F(
        "fresh10_resnet_nesterov_decay_0.1",
        "regularization",
        {"over_regularized"},
        "--weight-decay",
        "the ResNet at Nesterov SGD with weight decay 0.1",
        fresh=True,
        optimizer="nesterov",
        weight_decay=0.1,
    ),
    F(
        "fresh10_linear_adam_lr_10",
        "optimization",
        {"lr_too_high", "exploding"},
        "--lr",
        "softmax regression at Adam lr 10",
        fresh=True,
        model="linear",
        optimizer="adam",
        lr=10.0,
    ),
    F(
        "fresh10_digits_deep_sigmoid_mlp",
        "initialization",
        {"vanishing"},
        None,
        "an 8-layer sigmoid MLP without norm on digits at Nesterov lr 0.05",
        fresh=True,
        data="digits",
        subset=None,
        model="mlp",
        depth=8,
        activation="sigmoid",
        norm="none",
        optimizer="nesterov",
        lr=0.05,
    ),
    F(
        "fresh10_cnn_exp_schedule_0.01",
        "optimization",
        {"lr_too_low", "not_converged"},
        "--schedule",
        "a CNN at Nesterov lr 0.05 whose LR falls 100x every epoch (exp:0.01)",
        fresh=True,
        model="cnn",
        optimizer="nesterov",
        lr=0.05,
        schedule="exp:0.01",
    ),
    F(
        "fresh10_healthy_folder_resnet",
        "healthy",
        set(),
        what="the default ResNet on a folder of 1,500 PNGs",
        fresh=True,
        data="folder",
        subset=None,
    ),
    F(
        "fresh10_healthy_resnet_mixup_0.2",
        "healthy",
        set(),
        what="the ResNet at width 32 with Nesterov SGD and mixup 0.2",
        fresh=True,
        width=32,
        optimizer="nesterov",
        mixup=0.2,
        epochs=5,
    ),
    F(
        "fresh10_healthy_cnn_elu_rmsprop",
        "healthy",
        set(),
        what="an ELU CNN at RMSprop lr 1e-3",
        fresh=True,
        model="cnn",
        activation="elu",
        optimizer="rmsprop",
        lr=1e-3,
        epochs=5,
    ),
    F(
        "fresh10_healthy_digits_cnn_momentum_cosine",
        "healthy",
        set(),
        what="a CNN on digits at momentum SGD lr 0.05 with a cosine schedule",
        fresh=True,
        data="digits",
        subset=None,
        model="cnn",
        optimizer="momentum",
        lr=0.05,
        schedule="cosine",
        epochs=8,
    ),
    F(
        "fresh10_healthy_vgg_smoothing_dropout",
        "healthy",
        set(),
        what="a VGG with label smoothing 0.2 and dropout 0.3",
        fresh=True,
        model="vgg",
        label_smoothing=0.2,
        dropout=0.3,
        epochs=5,
    ),
    # --- fresh, eleventh set (session 22): written after fresh10's rules, before its first run ---
    F(
        "fresh11_noisy_test",
        "data",
        {"test_differs"},
        None,
        "the ResNet whose test images carry Gaussian noise of std 80 grey levels",
        fresh=True,
        data="noisy_test",
    ),
    F(
        "fresh11_zoomed_test",
        "data",
        {"test_differs"},
        None,
        "the ResNet whose test images are their central 14 px blown up 2x",
        fresh=True,
        data="zoomed_test",
    ),
    F(
        "fresh11_adam_l2_decay_0.5",
        "regularization",
        {"over_regularized"},
        "--weight-decay",
        "a CNN at Adam with (coupled) weight decay 0.5",
        fresh=True,
        model="cnn",
        optimizer="adam",
        weight_decay=0.5,
    ),
    F(
        "fresh11_xavier_deep_relu_mlp",
        "initialization",
        {"vanishing"},
        None,
        "a 10-layer ReLU MLP without norm, Xavier init (the variance halves every layer), Nesterov lr 0.05",
        fresh=True,
        model="mlp",
        depth=10,
        norm="none",
        init="xavier",
        optimizer="nesterov",
        lr=0.05,
    ),
    F(
        "fresh11_digits_100_images_overfit",
        "regularization",
        {"overfitting"},
        None,
        "a CNN on 100 digits for 40 epochs without augmentation",
        fresh=True,
        data="digits",
        subset=100,
        model="cnn",
        optimizer="adam",
        augment=["none"],
        epochs=40,
        batch_size=32,
    ),
    F(
        "fresh11_vgg_no_norm_momentum_lr_0.3",
        "optimization",
        {"lr_too_high", "exploding"},
        "--lr",
        "a VGG without BatchNorm at momentum SGD lr 0.3",
        fresh=True,
        model="vgg",
        norm="none",
        optimizer="momentum",
        lr=0.3,
    ),
    F(
        "fresh11_rmsprop_lr_1e-7_mlp",
        "optimization",
        {"lr_too_low"},
        "--lr",
        "an MLP at RMSprop lr 1e-7",
        fresh=True,
        model="mlp",
        optimizer="rmsprop",
        lr=1e-7,
    ),
    F(
        "fresh11_svm_sgd_lr_20",
        "optimization",
        {"lr_too_high", "exploding"},
        "--lr",
        "a CNN with the multiclass SVM loss at plain SGD lr 20",
        fresh=True,
        model="cnn",
        loss="svm",
        optimizer="sgd",
        lr=20.0,
    ),
    F(
        "fresh11_vgg_batch_3",
        "normalization",
        {"bn_small_batch"},
        "--norm",
        "a BatchNorm VGG at batch 3, one epoch",
        fresh=True,
        model="vgg",
        batch_size=3,
        epochs=1,
        subset=600,
    ),
    F(
        "fresh11_healthy_resnet_layernorm_adamw",
        "healthy",
        set(),
        what="the ResNet with LayerNorm and AdamW at lr 1e-3",
        fresh=True,
        norm="layer",
        optimizer="adamw",
        lr=1e-3,
        epochs=5,
    ),
    F(
        "fresh11_healthy_cnn_flip_tta",
        "healthy",
        set(),
        what="a CNN with flips in training and flip TTA",
        fresh=True,
        model="cnn",
        optimizer="adam",
        augment=["hflip"],
        tta="flip",
        epochs=5,
    ),
    F(
        "fresh11_healthy_resnet_rare_bag_weighted",
        "healthy",
        set(),
        what="the ResNet with bags at 30 of 200 and --class-weights balanced",
        fresh=True,
        data="rare_bag30",
        class_weights=["balanced"],
        epochs=5,
    ),
    F(
        "fresh11_healthy_digits_mlp_momentum",
        "healthy",
        set(),
        what="an MLP on digits at momentum SGD lr 0.05",
        fresh=True,
        data="digits",
        subset=None,
        model="mlp",
        optimizer="momentum",
        lr=0.05,
        epochs=8,
    ),
    F(
        "fresh11_healthy_resnet_fp32_batch_32",
        "healthy",
        set(),
        what="the ResNet in fp32 at batch 32",
        fresh=True,
        precision="fp32",
        batch_size=32,
    ),
    # --- fresh, twelfth set (session 22): written after fresh11's first run, before its own ---
    F(
        "fresh12_test_noisy_copies",
        "data",
        {"split_leakage"},
        None,
        "the ResNet whose test split is 30% training images with Gaussian noise of std 15 (no byte-identical copy)",
        fresh=True,
        data="noisy_leak30",
    ),
    F(
        "fresh12_train_noisy_duplicates",
        "data",
        {"duplicated_images"},
        None,
        "the ResNet on 200 images, each 10 times with its own noise of std 10 (no byte-identical copy)",
        fresh=True,
        data="noisy_duplicated200",
    ),
    F(
        "fresh12_shirts_labelled_tshirt",
        "data",
        {"class_imbalance", "classes_missed"},
        None,
        "the ResNet whose training shirts are all labelled T-shirt/top: no Shirt image left to learn from",
        fresh=True,
        data="shirt_as_tshirt",
    ),
    F(
        "fresh12_resnet_50_images",
        "regularization",
        {"overfitting"},
        None,
        "the ResNet on 50 training images for 30 epochs",
        fresh=True,
        subset=50,
        epochs=30,
        batch_size=16,
    ),
    F(
        "fresh12_smoothing_0.5_mixup_1",
        "regularization",
        {"over_regularized", "underfitting"},
        None,
        "a CNN 8 wide with label smoothing 0.5 and mixup at alpha 1",
        fresh=True,
        model="cnn",
        width=8,
        optimizer="adam",
        label_smoothing=0.5,
        mixup=1.0,
    ),
    F(
        "fresh12_healthy_resnet_val_0.2",
        "healthy",
        set(),
        what="the ResNet with a 20% validation split",
        fresh=True,
        val_fraction=0.2,
    ),
    F(
        "fresh12_healthy_digits_cnn_translate",
        "healthy",
        set(),
        what="a CNN on digits with Adam and 1-px shifts",
        fresh=True,
        data="digits",
        subset=None,
        model="cnn",
        optimizer="adam",
        augment=["translate:1"],
        epochs=8,
    ),
    F(
        "fresh12_healthy_resnet_ema_cosine",
        "healthy",
        set(),
        what="the ResNet with a weight average of decay 0.99 and a cosine schedule",
        fresh=True,
        ema=0.99,
        schedule="cosine",
    ),
    # --- fresh, thirteenth set (session 22): written after fresh12's rules, before its first run ---
    F(
        "fresh13_test_hard_classes",
        "data",
        {"test_differs"},
        None,
        "the ResNet tested on T-shirts, pullovers, coats and shirts only (the hardest classes)",
        fresh=True,
        data="test_hard_classes",
    ),
    F(
        "fresh13_saturated_train",
        "data",
        {"test_differs"},
        None,
        "the ResNet on training images at 3x contrast (clipped), tested on plain ones",
        fresh=True,
        data="saturated_train",
    ),
    F(
        "fresh13_resnet_dropout_0.99",
        "regularization",
        {"over_regularized", "underfitting"},
        "--dropout",
        "the ResNet with dropout 0.99 before its classifier",
        fresh=True,
        dropout=0.99,
    ),
    F(
        "fresh13_resnet_max_norm_0.001",
        "regularization",
        {"over_regularized", "underfitting"},
        "--max-norm",
        "the ResNet whose units' weight vectors are capped at norm 0.001",
        fresh=True,
        optimizer="nesterov",
        max_norm=0.001,
    ),
    F(
        "fresh13_digits_resnet_adamw_lr_1",
        "optimization",
        {"lr_too_high", "exploding"},
        "--lr",
        "the ResNet on digits at AdamW lr 1",
        fresh=True,
        data="digits",
        subset=None,
        optimizer="adamw",
        lr=1.0,
    ),
    F(
        "fresh13_cnn_momentum_lr_3e-6",
        "optimization",
        {"lr_too_low"},
        "--lr",
        "a CNN at momentum SGD lr 3e-6",
        fresh=True,
        model="cnn",
        optimizer="momentum",
        lr=3e-6,
    ),
    F(
        "fresh13_vgg_adamw_warmup_2000",
        "optimization",
        {"warmup_too_long"},
        "--warmup",
        "a VGG at AdamW 1e-3 with a 2000-iteration warm-up in a 124-iteration run",
        fresh=True,
        model="vgg",
        optimizer="adamw",
        lr=1e-3,
        warmup=2000,
    ),
    F(
        "fresh13_resnet_no_norm_init_0.5",
        "initialization",
        {"exploding", "lr_too_high"},
        "--init",
        "the ResNet without normalization, initialized from N(0, 0.5), Nesterov lr 0.05",
        fresh=True,
        norm="none",
        init="normal:0.5",
        optimizer="nesterov",
        lr=0.05,
    ),
    F(
        "fresh13_healthy_resnet_crop_jitter",
        "healthy",
        set(),
        what="the ResNet with flips, resized crops and colour jitter",
        fresh=True,
        augment=["hflip", "resized_crop", "jitter:0.2"],
        epochs=5,
    ),
    F(
        "fresh13_healthy_cnn_sampler_balanced",
        "healthy",
        set(),
        what="a CNN at Adam drawing balanced batches from balanced data",
        fresh=True,
        model="cnn",
        optimizer="adam",
        sampler="balanced",
        epochs=5,
    ),
    F(
        "fresh13_healthy_mlp_adamw_warmup",
        "healthy",
        set(),
        what="an MLP at AdamW with a 20-step warm-up and a cosine schedule",
        fresh=True,
        model="mlp",
        optimizer="adamw",
        warmup=20,
        schedule="cosine",
        epochs=5,
    ),
    F(
        "fresh13_healthy_resnet_depth_20",
        "healthy",
        set(),
        what="a 20-layer ResNet with Nesterov SGD",
        fresh=True,
        depth=20,
        optimizer="nesterov",
    ),
    # --- fresh, fourteenth set (session 23): written after fresh13's rules, before its first run ---
    F(
        "fresh14_blurred_test",
        "data",
        {"test_differs"},
        None,
        "the ResNet whose test images are blurred (two 3x3 box filters)",
        fresh=True,
        data="blurred_test",
    ),
    F(
        "fresh14_shrunk_test",
        "data",
        {"test_differs"},
        None,
        "the ResNet whose test images are shrunk to 14 px in the middle of a black 28-px frame",
        fresh=True,
        data="shrunk_test",
    ),
    F(
        "fresh14_rare_coat_and_pullover",
        "data",
        {"class_imbalance", "classes_missed"},
        None,
        "the ResNet with 8 coats and 8 pullovers against ~300 images of each other class",
        fresh=True,
        data="rare_coat_pullover",
    ),
    F(
        "fresh14_vgg_label_noise_40",
        "data",
        {"label_noise"},
        None,
        "a VGG whose training labels are 40% replaced at random",
        fresh=True,
        data="noise40",
        model="vgg",
        val_fraction=0.2,
    ),
    F(
        "fresh14_resnet_sam_rho_5",
        "regularization",
        {"over_regularized", "underfitting"},
        "--sam",
        "the ResNet with sharpness-aware minimization at rho 5 (the usual 0.05)",
        fresh=True,
        sam=5.0,
    ),
    F(
        "fresh14_muon_lr_1e-6",
        "optimization",
        {"lr_too_low", "underfitting"},
        "--muon-lr",
        "the default Muon ResNet whose conv filters turn 1e-6 rad a step (muon_lr 1e-6): only the head learns",
        fresh=True,
        muon_lr=1e-6,
    ),
    F(
        "fresh14_cnn_step_schedule_after_1",
        "optimization",
        {"lr_too_low", "not_converged", "plateau"},
        "--schedule",
        "a CNN at Nesterov lr 0.05 whose LR drops 1000x after the first epoch (step:1:0.001)",
        fresh=True,
        model="cnn",
        optimizer="nesterov",
        lr=0.05,
        schedule="step:1:0.001",
    ),
    F(
        "fresh14_digits_linear_sgd_lr_100",
        "optimization",
        {"exploding", "lr_too_high"},
        "--lr",
        "softmax regression on digits at plain SGD lr 100",
        fresh=True,
        data="digits",
        subset=None,
        model="linear",
        optimizer="sgd",
        lr=100.0,
    ),
    F(
        "fresh14_cnn_adamw_decay_5",
        "regularization",
        {"over_regularized"},
        "--weight-decay",
        "a CNN at AdamW with decoupled weight decay 5",
        fresh=True,
        model="cnn",
        optimizer="adamw",
        weight_decay=5.0,
    ),
    F(
        "fresh14_healthy_resnet_sam_0.05",
        "healthy",
        set(),
        what="the ResNet with sharpness-aware minimization at rho 0.05",
        fresh=True,
        sam=0.05,
        epochs=5,
    ),
    F(
        "fresh14_healthy_cnn_cutmix_0.5",
        "healthy",
        set(),
        what="a CNN at Adam with cutmix at alpha 0.5",
        fresh=True,
        model="cnn",
        optimizer="adam",
        cutmix=0.5,
        epochs=5,
    ),
    F(
        "fresh14_healthy_digits_vgg_nesterov",
        "healthy",
        set(),
        what="a VGG on digits at Nesterov lr 0.05",
        fresh=True,
        data="digits",
        subset=None,
        model="vgg",
        optimizer="nesterov",
        lr=0.05,
        epochs=6,
    ),
    F(
        "fresh14_healthy_resnet_width_32_adam",
        "healthy",
        set(),
        what="the ResNet at width 32 with Adam",
        fresh=True,
        width=32,
        optimizer="adam",
    ),
    # --- fresh, fifteenth set (session 23): written after fresh14's rules, before its first run ---
    F(
        "fresh15_gamma_test",
        "data",
        {"test_differs"},
        None,
        "the ResNet whose test images are gamma-brightened (each pixel's square root)",
        fresh=True,
        data="gamma_test",
    ),
    F(
        "fresh15_noisy_train",
        "data",
        {"test_differs"},
        None,
        "the ResNet trained (and validated) on images with Gaussian noise of std 60 grey levels, tested on clean ones",
        fresh=True,
        data="noisy_train60",
    ),
    F(
        "fresh15_labels_shifted_30",
        "data",
        {"label_noise"},
        None,
        "the ResNet whose training labels are moved to the next class for 30% of the images",
        fresh=True,
        data="shift30",
        val_fraction=0.2,
    ),
    F(
        "fresh15_digits_rare_7",
        "data",
        {"class_imbalance", "classes_missed"},
        None,
        "a CNN on digits with 3 training images of 7 against ~140 of each other digit",
        fresh=True,
        data="digits:rare7",
        subset=None,
        model="cnn",
        optimizer="adam",
        epochs=6,
    ),
    F(
        "fresh15_mlp_warmup_1500_cosine",
        "optimization",
        {"warmup_too_long"},
        "--warmup",
        "an MLP at Adam with a 1500-iteration warm-up and a cosine schedule in a 124-iteration run",
        fresh=True,
        model="mlp",
        optimizer="adam",
        warmup=1500,
        schedule="cosine",
    ),
    F(
        "fresh15_sigmoid_mlp_12_xavier",
        "initialization",
        {"vanishing"},
        None,
        "a 12-layer sigmoid MLP without norm, Xavier init, Nesterov lr 0.05",
        fresh=True,
        model="mlp",
        depth=12,
        activation="sigmoid",
        norm="none",
        init="xavier",
        optimizer="nesterov",
        lr=0.05,
    ),
    F(
        "fresh15_cnn_batch_1024",
        "optimization",
        {"not_converged", "too_short"},
        None,
        "a CNN at Adam with batch 1024 on 2,000 images: 8 steps in the run",
        fresh=True,
        model="cnn",
        optimizer="adam",
        batch_size=1024,
    ),
    F(
        "fresh15_vgg_input_noise_5",
        "regularization",
        {"over_regularized", "underfitting"},
        "--input-noise",
        "a VGG with Gaussian input noise of std 5 (normalized units)",
        fresh=True,
        model="vgg",
        input_noise=5.0,
    ),
    F(
        "fresh15_mlp_adagrad_lr_10",
        "optimization",
        {"exploding", "lr_too_high"},
        "--lr",
        "an MLP at Adagrad lr 10",
        fresh=True,
        model="mlp",
        optimizer="adagrad",
        lr=10.0,
    ),
    F(
        "fresh15_resnet_sgd_lr_3e-4",
        "optimization",
        {"lr_too_low", "not_converged"},
        "--lr",
        "the ResNet at plain SGD lr 3e-4",
        fresh=True,
        optimizer="sgd",
        lr=3e-4,
    ),
    F(
        "fresh15_healthy_resnet_sam_0.1_nesterov",
        "healthy",
        set(),
        what="the ResNet at Nesterov SGD with sharpness-aware minimization at rho 0.1",
        fresh=True,
        optimizer="nesterov",
        sam=0.1,
        epochs=5,
    ),
    F(
        "fresh15_healthy_vgg_cutout_8",
        "healthy",
        set(),
        what="a VGG with 8-px cutout",
        fresh=True,
        model="vgg",
        cutout=8,
        epochs=5,
    ),
    F(
        "fresh15_healthy_digits_resnet_adamw",
        "healthy",
        set(),
        what="the ResNet on digits at AdamW lr 1e-3",
        fresh=True,
        data="digits",
        subset=None,
        optimizer="adamw",
        lr=1e-3,
        epochs=6,
    ),
    F(
        "fresh15_healthy_cnn_smoothing_0.2_cosine",
        "healthy",
        set(),
        what="a CNN at Nesterov lr 0.05 with label smoothing 0.2 and a cosine schedule",
        fresh=True,
        model="cnn",
        optimizer="nesterov",
        lr=0.05,
        label_smoothing=0.2,
        schedule="cosine",
        epochs=5,
    ),
    # --- fresh, sixteenth set (session 23): written after fresh15's rules, before its first run ---
    F(
        "fresh16_test_moved_down_4",
        "data",
        {"test_differs"},
        None,
        "the ResNet whose test images are moved 4 px down",
        fresh=True,
        data="down4_test",
    ),
    F(
        "fresh16_no_sandals_in_training",
        "data",
        {"class_imbalance", "classes_missed"},
        None,
        "the ResNet with no Sandal image in training; the test split has its usual share",
        fresh=True,
        data="no_sandal",
    ),
    F(
        "fresh16_digits_inverted_test",
        "data",
        {"test_differs"},
        None,
        "a CNN on digits whose test images are inverted",
        fresh=True,
        data="digits:inverted_test",
        subset=None,
        model="cnn",
        optimizer="adam",
        epochs=6,
    ),
    F(
        "fresh16_mlp_momentum_0.99_lr_0.5",
        "optimization",
        {"exploding", "lr_too_high"},
        "--lr",
        "an MLP at momentum SGD lr 0.5 with momentum 0.99",
        fresh=True,
        model="mlp",
        optimizer="momentum",
        lr=0.5,
        momentum=0.99,
    ),
    F(
        "fresh16_vgg_dropout_0.97",
        "regularization",
        {"over_regularized", "underfitting"},
        "--dropout",
        "a VGG with dropout 0.97",
        fresh=True,
        model="vgg",
        dropout=0.97,
    ),
    F(
        "fresh16_resnet_warmup_400",
        "optimization",
        {"warmup_too_long"},
        "--warmup",
        "the default ResNet with a 400-iteration warm-up in a 124-iteration run",
        fresh=True,
        warmup=400,
    ),
    F(
        "fresh16_cnn_exp_0.05",
        "optimization",
        {"lr_too_low", "not_converged", "plateau"},
        "--schedule",
        "a CNN at Nesterov lr 0.05 whose LR falls 20x every epoch (exp:0.05)",
        fresh=True,
        model="cnn",
        optimizer="nesterov",
        lr=0.05,
        schedule="exp:0.05",
    ),
    F(
        "fresh16_cnn_reg_l2_3",
        "regularization",
        {"over_regularized"},
        "--reg",
        "a CNN at Adam with an L2 penalty of 3",
        fresh=True,
        model="cnn",
        optimizer="adam",
        reg="l2:3",
    ),
    F(
        "fresh16_vgg_rmsprop_lr_1e-8",
        "optimization",
        {"lr_too_low"},
        "--lr",
        "a VGG at RMSprop lr 1e-8",
        fresh=True,
        model="vgg",
        optimizer="rmsprop",
        lr=1e-8,
    ),
    F(
        "fresh16_healthy_resnet_adamw_sam",
        "healthy",
        set(),
        what="the ResNet at AdamW lr 1e-3 with sharpness-aware minimization at rho 0.05",
        fresh=True,
        optimizer="adamw",
        lr=1e-3,
        sam=0.05,
        epochs=5,
    ),
    F(
        "fresh16_healthy_cnn_translate_erase",
        "healthy",
        set(),
        what="a CNN at Adam with 2-px shifts and random erasing",
        fresh=True,
        model="cnn",
        optimizer="adam",
        augment=["translate:2", "erase:0.5"],
        epochs=5,
    ),
    F(
        "fresh16_healthy_mlp_layernorm_adam",
        "healthy",
        set(),
        what="an MLP with LayerNorm at Adam",
        fresh=True,
        model="mlp",
        norm="layer",
        optimizer="adam",
        epochs=5,
    ),
    F(
        "fresh16_healthy_digits_cnn_nesterov_step",
        "healthy",
        set(),
        what="a CNN on digits at Nesterov lr 0.05, the LR cut 10x after epochs 4 and 6",
        fresh=True,
        data="digits",
        subset=None,
        model="cnn",
        optimizer="nesterov",
        lr=0.05,
        schedule="step:4,6",
        epochs=8,
    ),
    # --- fresh, seventeenth set (session 24): written after fresh16's first run, before its own ---
    F(
        "fresh17_test_sneakers_inverted",
        "data",
        {"test_differs"},
        None,
        "the ResNet whose test Sneaker images (only those) are inverted",
        fresh=True,
        data="sneaker_inverted_test",
    ),
    F(
        "fresh17_test_flipped_train_copies",
        "data",
        {"split_leakage"},
        None,
        "the ResNet whose test split is 30% mirrored copies of training images",
        fresh=True,
        data="flipped_leak30",
    ),
    F(
        "fresh17_train_labels_cycled_3",
        "data",
        {"test_differs", "classes_missed"},
        None,
        "the ResNet with T-shirt, Trouser and Pullover labels cycled in training only",
        fresh=True,
        data="cycled_3",
    ),
    F(
        "fresh17_resnet_image_size_8",
        "data",
        {"underfitting"},
        "--image-size",
        "the ResNet on images resized from 28 to 8 px",
        fresh=True,
        image_size=8,
    ),
    F(
        "fresh17_patience_1_min_delta_0.05",
        "optimization",
        {"not_converged", "too_short"},
        "--min-delta",
        "a CNN at Adam for 10 epochs that stops when validation accuracy gains under 5 points",
        fresh=True,
        model="cnn",
        optimizer="adam",
        epochs=10,
        patience=1,
        min_delta=0.05,
    ),
    F(
        "fresh17_linear_adam_lr_1e-5",
        "optimization",
        {"lr_too_low"},
        "--lr",
        "softmax regression at Adam lr 1e-5",
        fresh=True,
        model="linear",
        optimizer="adam",
        lr=1e-5,
    ),
    F(
        "fresh17_cnn_mixup_cutmix_5",
        "regularization",
        {"over_regularized", "underfitting"},
        "mix",
        "a CNN at Adam with mixup 5 and cutmix 5",
        fresh=True,
        model="cnn",
        optimizer="adam",
        mixup=5.0,
        cutmix=5.0,
    ),
    F(
        "fresh17_muon_weight_decay_1",
        "regularization",
        {"over_regularized"},
        "--weight-decay",
        "the default ResNet and Muon with weight decay 1",
        fresh=True,
        weight_decay=1.0,
    ),
    F(
        "fresh17_adam_beta1_0.999",
        "optimization",
        {"lr_too_high", "exploding", "plateau", "not_converged"},
        "--momentum",
        "a CNN at Adam lr 1e-3 with beta1 (--momentum) 0.999",
        fresh=True,
        model="cnn",
        optimizer="adam",
        momentum=0.999,
    ),
    F(
        "fresh17_healthy_resnet_channels_3",
        "healthy",
        set(),
        what="the default ResNet on the gray images replicated to 3 channels",
        fresh=True,
        channels=3,
        epochs=5,
    ),
    F(
        "fresh17_healthy_mlp_lsuv_depth_4",
        "healthy",
        set(),
        what="a 4-layer MLP with LSUV initialization at Adam",
        fresh=True,
        model="mlp",
        depth=4,
        init="lsuv",
        optimizer="adam",
        epochs=5,
    ),
    F(
        "fresh17_healthy_cnn_instance_norm_adam",
        "healthy",
        set(),
        what="a CNN with instance norm at Adam",
        fresh=True,
        model="cnn",
        norm="instance",
        optimizer="adam",
        epochs=5,
    ),
    F(
        "fresh17_healthy_digits_resnet_cosine",
        "healthy",
        set(),
        what="the ResNet on digits with Muon and a cosine schedule",
        fresh=True,
        data="digits",
        subset=None,
        schedule="cosine",
        epochs=8,
    ),
    # --- fresh, eighteenth set (session 24): written after fresh17's fixes, before its own first run ---
    F(
        "fresh18_test_sandal_sneaker_swapped",
        "data",
        {"test_differs"},
        None,
        "the ResNet whose test split has the Sandal and Sneaker labels exchanged (training is right)",
        fresh=True,
        data="test_swap_sandal_sneaker",
    ),
    F(
        "fresh18_bags_repeated_20x",
        "data",
        {"class_imbalance", "duplicated_images"},
        None,
        "the ResNet on a training split where every Bag image appears 20 times",
        fresh=True,
        data="bags_x20",
    ),
    F(
        "fresh18_test_half_upside_down",
        "data",
        {"test_differs"},
        None,
        "the ResNet whose test split has half its images upside down",
        fresh=True,
        data="half_vflipped_test",
    ),
    F(
        "fresh18_train_low_contrast",
        "data",
        {"test_differs"},
        None,
        "the ResNet trained on low-contrast images (x 0.3 + 90) and tested on the usual ones",
        fresh=True,
        data="low_contrast_train",
    ),
    F(
        "fresh18_ankle_boot_weight_0",
        "data",
        {"classes_missed"},
        "--class-weights",
        "the ResNet with class weights that give Ankle boot a weight of 0",
        fresh=True,
        class_weights=["1", "1", "1", "1", "1", "1", "1", "1", "1", "0"],
    ),
    F(
        "fresh18_mlp_plain_sgd_lr_0.003",
        "optimization",
        {"lr_too_low"},
        "--lr",
        "an MLP at plain SGD lr 0.003",
        fresh=True,
        model="mlp",
        optimizer="sgd",
        lr=0.003,
    ),
    F(
        "fresh18_deep_mlp_no_norm_sgd_0.5",
        "optimization",
        {"lr_too_high", "exploding"},
        None,
        "an 8-layer MLP without normalization at plain SGD lr 0.5",
        fresh=True,
        model="mlp",
        depth=8,
        norm="none",
        optimizer="sgd",
        lr=0.5,
    ),
    F(
        "fresh18_vgg_nesterov_lr_3",
        "optimization",
        {"lr_too_high", "exploding"},
        "--lr",
        "a VGG at Nesterov lr 3",
        fresh=True,
        model="vgg",
        optimizer="nesterov",
        lr=3.0,
    ),
    F(
        "fresh18_resnet_randaugment_3_30",
        "regularization",
        {"over_regularized", "underfitting"},
        "--augment",
        "the ResNet with RandAugment at 3 ops of magnitude 30",
        fresh=True,
        augment=["randaugment:3:30"],
    ),
    F(
        "fresh18_mlp_init_normal_0.001_depth_6",
        "initialization",
        {"vanishing"},
        "--init",
        "a 6-layer MLP initialized from N(0, 0.001)",
        fresh=True,
        model="mlp",
        depth=6,
        init="normal:0.001",
        optimizer="nesterov",
        lr=0.05,
    ),
    F(
        "fresh18_healthy_resnet_accumulate_2_batch_32",
        "healthy",
        set(),
        what="the ResNet at batch 32 with 2 batches accumulated per step",
        fresh=True,
        batch_size=32,
        accumulate=2,
    ),
    F(
        "fresh18_healthy_vgg_adamw_cosine_warmup_20",
        "healthy",
        set(),
        what="a VGG at AdamW lr 1e-3, cosine schedule after a 20-step warm-up",
        fresh=True,
        model="vgg",
        optimizer="adamw",
        lr=1e-3,
        schedule="cosine",
        warmup=20,
        epochs=5,
    ),
    F(
        "fresh18_healthy_mlp_gelu_nesterov",
        "healthy",
        set(),
        what="a GELU MLP at Nesterov lr 0.05",
        fresh=True,
        model="mlp",
        activation="gelu",
        optimizer="nesterov",
        lr=0.05,
        epochs=5,
    ),
    F(
        "fresh18_healthy_digits_cnn_adam_translate_erase",
        "healthy",
        set(),
        what="a CNN on digits at Adam with 1-px shifts and random erasing",
        fresh=True,
        data="digits",
        subset=None,
        model="cnn",
        optimizer="adam",
        augment=["translate:1", "erase:0.5"],
        epochs=8,
    ),
    F(
        "fresh18_healthy_resnet_image_size_32",
        "healthy",
        set(),
        what="the ResNet on the images enlarged from 28 to 32 px",
        fresh=True,
        image_size=32,
    ),
    # --- fresh, nineteenth set (session 24): written after fresh18's fixes, before its own first run ---
    F(
        "fresh19_test_white_border",
        "data",
        {"test_differs"},
        None,
        "the ResNet whose test images carry a 2-px white frame",
        fresh=True,
        data="framed_test",
    ),
    F(
        "fresh19_long_tail",
        "data",
        {"class_imbalance", "classes_missed"},
        None,
        "the ResNet on a long-tailed training split (each class half the previous one's count)",
        fresh=True,
        data="long_tail",
        subset=None,
    ),
    F(
        "fresh19_test_2pct_training_copies",
        "data",
        {"split_leakage"},
        None,
        "the ResNet whose test split holds 2% exact copies of training images",
        fresh=True,
        data="leaked2",
    ),
    F(
        "fresh19_mlp_width_16_dropout_0.5",
        "regularization",
        {"over_regularized", "underfitting"},
        "--dropout",
        "a one-layer MLP 16 units wide with dropout 0.5",
        fresh=True,
        model="mlp",
        depth=1,
        width=16,
        dropout=0.5,
        optimizer="adam",
    ),
    F(
        "fresh19_vgg_500_images_25_epochs",
        "regularization",
        {"overfitting"},
        None,
        "a VGG on 500 images for 25 epochs without augmentation or weight decay",
        fresh=True,
        model="vgg",
        subset=500,
        epochs=25,
        augment=["none"],
        weight_decay=0.0,
    ),
    F(
        "fresh19_digits_mlp_sgd_lr_2",
        "optimization",
        {"lr_too_high", "exploding"},
        "--lr",
        "an MLP on digits at plain SGD lr 2",
        fresh=True,
        data="digits",
        subset=None,
        model="mlp",
        optimizer="sgd",
        lr=2.0,
        epochs=6,
    ),
    F(
        "fresh19_tanh_cnn_init_normal_0.3",
        "initialization",
        {"exploding"},
        "--init",
        "a tanh CNN without normalization initialized from N(0, 0.3)",
        fresh=True,
        model="cnn",
        activation="tanh",
        norm="none",
        init="normal:0.3",
        optimizer="adam",
    ),
    F(
        "fresh19_train_moved_right_3",
        "data",
        {"test_differs"},
        None,
        "the ResNet trained on images moved 3 px right, tested on the usual ones",
        fresh=True,
        data="right3_train",
    ),
    F(
        "fresh19_healthy_resnet_val_fraction_0.01",
        "healthy",
        set(),
        what="the ResNet with a 1% validation split",
        fresh=True,
        val_fraction=0.01,
    ),
    F(
        "fresh19_healthy_cnn_silu_adamw_erase",
        "healthy",
        set(),
        what="a SiLU CNN at AdamW with random erasing",
        fresh=True,
        model="cnn",
        activation="silu",
        optimizer="adamw",
        augment=["hflip", "erase:0.5"],
        epochs=5,
    ),
    F(
        "fresh19_healthy_mlp_depth_3_adam_no_smoothing",
        "healthy",
        set(),
        what="a 3-layer MLP at Adam without label smoothing",
        fresh=True,
        model="mlp",
        depth=3,
        optimizer="adam",
        label_smoothing=0.0,
        epochs=5,
    ),
    F(
        "fresh19_healthy_digits_vgg_adamw",
        "healthy",
        set(),
        what="a VGG on digits at AdamW",
        fresh=True,
        data="digits",
        subset=None,
        model="vgg",
        optimizer="adamw",
        epochs=8,
    ),
    F(
        "fresh19_healthy_resnet_image_size_20",
        "healthy",
        set(),
        what="the ResNet on the images resized from 28 to 20 px",
        fresh=True,
        image_size=20,
    ),
    # --- fresh, twentieth set (session 24): written after fresh19's fixes, before its own first run ---
    F(
        "fresh20_test_jpeg_quality_10",
        "data",
        {"test_differs"},
        None,
        "the ResNet whose test images were saved as JPEG at quality 10",
        fresh=True,
        data="jpeg10_test",
    ),
    F(
        "fresh20_confusable_labels_25",
        "data",
        {"label_noise"},
        None,
        "the ResNet with 25% of the training labels moved to the class they are most taken for",
        fresh=True,
        data="confusable25",
    ),
    F(
        "fresh20_test_20pct_blank",
        "data",
        {"test_differs"},
        None,
        "the ResNet whose test split has 20% black images (unreadable files decoded as zeros)",
        fresh=True,
        data="blank20_test",
    ),
    F(
        "fresh20_digits_cnn_raw_pixels",
        "normalization",
        {"inputs_not_normalized"},
        "--preprocess",
        "a CNN on digits at SGD 0.05 on raw pixels (--preprocess none)",
        fresh=True,
        data="digits",
        subset=None,
        model="cnn",
        preprocess="none",
        optimizer="sgd",
        lr=0.05,
        epochs=6,
    ),
    F(
        "fresh20_vgg_adamw_lr_1e-5_cosine",
        "optimization",
        {"lr_too_low"},
        "--lr",
        "a VGG at AdamW lr 1e-5 with a cosine schedule",
        fresh=True,
        model="vgg",
        optimizer="adamw",
        lr=1e-5,
        schedule="cosine",
    ),
    F(
        "fresh20_cnn_shear_60",
        "regularization",
        {"over_regularized", "underfitting"},
        "--augment",
        "a CNN at Adam with 60-degree shears",
        fresh=True,
        model="cnn",
        optimizer="adam",
        augment=["hflip", "shear:60"],
    ),
    F(
        "fresh20_resnet_batch_6",
        "normalization",
        {"bn_small_batch"},
        "--norm",
        "the BatchNorm ResNet at batch 6",
        fresh=True,
        batch_size=6,
        epochs=2,
    ),
    F(
        "fresh20_healthy_resnet_balanced_weights",
        "healthy",
        set(),
        what="the ResNet with balanced class weights on balanced data",
        fresh=True,
        class_weights=["balanced"],
    ),
    F(
        "fresh20_healthy_cnn_nesterov_rotate_10",
        "healthy",
        set(),
        what="a CNN at Nesterov lr 0.05 with 10-degree rotations and no label smoothing",
        fresh=True,
        model="cnn",
        optimizer="nesterov",
        lr=0.05,
        augment=["hflip", "rotate:10"],
        label_smoothing=0.0,
        epochs=5,
    ),
    F(
        "fresh20_healthy_vgg_muon",
        "healthy",
        set(),
        what="a VGG with Muon",
        fresh=True,
        model="vgg",
        epochs=5,
    ),
    F(
        "fresh20_healthy_mlp_adamw_ema",
        "healthy",
        set(),
        what="an MLP at AdamW with weight averaging (EMA 0.99)",
        fresh=True,
        model="mlp",
        optimizer="adamw",
        ema=0.99,
        epochs=5,
    ),
    F(
        "fresh20_healthy_digits_resnet_batch_32",
        "healthy",
        set(),
        what="the ResNet on digits at batch 32",
        fresh=True,
        data="digits",
        subset=None,
        batch_size=32,
        epochs=6,
    ),
    # --- fresh, twenty-first set (session 24): written after fresh20's first run, before its own ---
    F(
        "fresh21_folder_every_file_twice",
        "data",
        {"split_leakage", "duplicated_images"},
        None,
        "the ResNet on a PNG folder where every image is saved twice under two names",
        fresh=True,
        data="folder_twins",
        subset=None,
    ),
    F(
        "fresh21_color_test_red_zeroed",
        "data",
        {"test_differs"},
        None,
        "the ResNet on randomly tinted colour images whose test images lost their red channel",
        fresh=True,
        data="color_red_zeroed_test",
    ),
    F(
        "fresh21_test_half_labels_offset",
        "data",
        {"test_differs"},
        None,
        "the ResNet whose test split has half its labels moved to the next class",
        fresh=True,
        data="test_offset50",
    ),
    F(
        "fresh21_color_cnn_adam_lr_0.1",
        "optimization",
        {"lr_too_high", "exploding"},
        "--lr",
        "a CNN on tinted colour images at Adam lr 0.1",
        fresh=True,
        data="color_random",
        model="cnn",
        optimizer="adam",
        lr=0.1,
    ),
    F(
        "fresh21_color_mlp_sgd_lr_1e-4",
        "optimization",
        {"lr_too_low"},
        "--lr",
        "an MLP on tinted colour images at plain SGD lr 1e-4",
        fresh=True,
        data="color_random",
        model="mlp",
        optimizer="sgd",
        lr=1e-4,
    ),
    F(
        "fresh21_small_vgg_stacked_usual_regularizers",
        "regularization",
        {"over_regularized", "underfitting"},
        None,
        "a VGG 4 channels wide with label smoothing 0.3, mixup 0.4, cutout 14 and dropout 0.3",
        fresh=True,
        model="vgg",
        width=4,
        label_smoothing=0.3,
        mixup=0.4,
        cutout=14,
        dropout=0.3,
    ),
    F(
        "fresh21_digits_resnet_decay_0.05",
        "regularization",
        {"over_regularized"},
        "--weight-decay",
        "the ResNet on digits at Nesterov with weight decay 0.05",
        fresh=True,
        data="digits",
        subset=None,
        optimizer="nesterov",
        weight_decay=0.05,
        epochs=6,
    ),
    F(
        "fresh21_healthy_color_vgg_adam",
        "healthy",
        set(),
        what="a VGG at Adam on randomly tinted colour images",
        fresh=True,
        data="color_random",
        model="vgg",
        optimizer="adam",
        epochs=5,
    ),
    F(
        "fresh21_healthy_folder_cnn_adam",
        "healthy",
        set(),
        what="a CNN at Adam on a PNG folder",
        fresh=True,
        data="folder",
        subset=None,
        model="cnn",
        optimizer="adam",
        epochs=5,
    ),
    F(
        "fresh21_healthy_resnet_mixup_cutmix",
        "healthy",
        set(),
        what="the ResNet with mixup 0.4 and cutmix 1 for 6 epochs",
        fresh=True,
        mixup=0.4,
        cutmix=1.0,
        epochs=6,
    ),
    F(
        "fresh21_healthy_wide_mlp_dropout_0.2",
        "healthy",
        set(),
        what="an MLP 512 units wide with dropout 0.2 at Adam",
        fresh=True,
        model="mlp",
        width=512,
        dropout=0.2,
        optimizer="adam",
        epochs=5,
    ),
    # --- fresh, twenty-second set (session 24): written after fresh21's fix, before its own first run ---
    F(
        "fresh22_resnet_nesterov_lr_8",
        "optimization",
        {"lr_too_high", "exploding"},
        "--lr",
        "the ResNet at Nesterov lr 8 (10x its default)",
        fresh=True,
        optimizer="nesterov",
        lr=8.0,
    ),
    F(
        "fresh22_mlp_adam_lr_3e-6",
        "optimization",
        {"lr_too_low"},
        "--lr",
        "an MLP at Adam lr 3e-6",
        fresh=True,
        model="mlp",
        optimizer="adam",
        lr=3e-6,
    ),
    F(
        "fresh22_cnn_no_norm_init_normal_0.5",
        "initialization",
        {"exploding"},
        "--init",
        "a ReLU CNN without normalization initialized from N(0, 0.5)",
        fresh=True,
        model="cnn",
        norm="none",
        init="normal:0.5",
        optimizer="adam",
    ),
    F(
        "fresh22_tanh_mlp_zero_init",
        "initialization",
        {"symmetric_init"},
        "--init",
        "a tanh MLP with every weight initialized to zero",
        fresh=True,
        model="mlp",
        activation="tanh",
        init="zeros",
        optimizer="adam",
    ),
    F(
        "fresh22_vgg_label_noise_20",
        "data",
        {"label_noise"},
        None,
        "a VGG with 20% of the training labels drawn at random",
        fresh=True,
        data="noise20",
        model="vgg",
    ),
    F(
        "fresh22_digits_test_moved_2px",
        "data",
        {"test_differs"},
        None,
        "a CNN on digits whose 8-px test images are moved 2 px right",
        fresh=True,
        data="digits:right2_test",
        subset=None,
        model="cnn",
        optimizer="adam",
        epochs=6,
    ),
    F(
        "fresh22_resnet_width_4_stochastic_depth_0.4",
        "regularization",
        {"over_regularized", "underfitting"},
        None,
        "a ResNet 4 channels wide with stochastic depth 0.4",
        fresh=True,
        width=4,
        stochastic_depth=0.4,
    ),
    F(
        "fresh22_healthy_resnet_depth_8_width_8",
        "healthy",
        set(),
        what="a small ResNet (depth 8, width 8)",
        fresh=True,
        depth=8,
        width=8,
        epochs=5,
    ),
    F(
        "fresh22_healthy_mlp_momentum_cosine",
        "healthy",
        set(),
        what="an MLP at momentum SGD lr 0.05 with a cosine schedule",
        fresh=True,
        model="mlp",
        optimizer="momentum",
        lr=0.05,
        schedule="cosine",
        epochs=5,
    ),
    F(
        "fresh22_healthy_cnn_adam_batch_16",
        "healthy",
        set(),
        what="a CNN at Adam with batch 16",
        fresh=True,
        model="cnn",
        optimizer="adam",
        batch_size=16,
    ),
    F(
        "fresh22_healthy_vgg_nesterov_erase_translate",
        "healthy",
        set(),
        what="a VGG at Nesterov lr 0.05 with erasing and 2-px shifts for 6 epochs",
        fresh=True,
        model="vgg",
        optimizer="nesterov",
        lr=0.05,
        augment=["hflip", "translate:2", "erase:0.5"],
        epochs=6,
    ),
    F(
        "fresh22_healthy_digits_mlp_adamw_dropout_0.3",
        "healthy",
        set(),
        what="an MLP on digits at AdamW with dropout 0.3",
        fresh=True,
        data="digits",
        subset=None,
        model="mlp",
        optimizer="adamw",
        dropout=0.3,
        epochs=8,
    ),
    # --- fresh, twenty-third set (session 24): written after fresh22's first run, before its own ---
    F(
        "fresh23_no_norm_mlp_nesterov_lr_0.8",
        "optimization",
        {"lr_too_high", "exploding"},
        "--lr",
        "a 4-layer MLP without normalization at Nesterov lr 0.8",
        fresh=True,
        model="mlp",
        depth=4,
        norm="none",
        optimizer="nesterov",
        lr=0.8,
    ),
    F(
        "fresh23_test_upside_down",
        "data",
        {"test_differs"},
        None,
        "the ResNet whose test images are all upside down",
        fresh=True,
        data="vflipped_test",
    ),
    F(
        "fresh23_trousers_90pct",
        "data",
        {"class_imbalance", "classes_missed"},
        None,
        "the ResNet on a training split that is 90% trousers",
        fresh=True,
        data="trousers90",
        subset=None,
    ),
    F(
        "fresh23_vgg_adam_decay_0.02",
        "regularization",
        {"over_regularized"},
        "--weight-decay",
        "a VGG at Adam with (coupled) weight decay 0.02",
        fresh=True,
        model="vgg",
        optimizer="adam",
        weight_decay=0.02,
    ),
    F(
        "fresh23_cnn_cutout_20",
        "regularization",
        {"over_regularized", "underfitting"},
        "--cutout",
        "a CNN at Adam with 20-px cutout on 28-px images",
        fresh=True,
        model="cnn",
        optimizer="adam",
        cutout=20,
    ),
    F(
        "fresh23_elu_cnn_init_normal_1",
        "initialization",
        {"exploding"},
        "--init",
        "an ELU CNN without normalization initialized from N(0, 1)",
        fresh=True,
        model="cnn",
        activation="elu",
        norm="none",
        init="normal:1",
        optimizer="adam",
    ),
    F(
        "fresh23_healthy_resnet_adamw_cosine",
        "healthy",
        set(),
        what="the ResNet at AdamW lr 3e-3 with a cosine schedule",
        fresh=True,
        optimizer="adamw",
        lr=3e-3,
        schedule="cosine",
        epochs=5,
    ),
    F(
        "fresh23_healthy_cnn_gelu_nesterov_translate",
        "healthy",
        set(),
        what="a GELU CNN at Nesterov lr 0.05 with 1-px shifts",
        fresh=True,
        model="cnn",
        activation="gelu",
        optimizer="nesterov",
        lr=0.05,
        augment=["hflip", "translate:1"],
        epochs=5,
    ),
    F(
        "fresh23_healthy_mlp_rmsprop",
        "healthy",
        set(),
        what="a 2-layer MLP at RMSprop lr 1e-3",
        fresh=True,
        model="mlp",
        depth=2,
        optimizer="rmsprop",
        lr=1e-3,
        epochs=5,
    ),
    F(
        "fresh23_healthy_digits_resnet_adam",
        "healthy",
        set(),
        what="the ResNet on digits at Adam lr 1e-3",
        fresh=True,
        data="digits",
        subset=None,
        optimizer="adam",
        lr=1e-3,
        epochs=8,
    ),
    # --- healthy runs ---
    F("healthy_resnet_muon", "healthy", set(), what="the default model and recipe"),
    F("healthy_cnn_adam", "healthy", set(), what="a CNN with Adam", model="cnn", optimizer="adam", epochs=5),
    F("healthy_mlp_adam", "healthy", set(), what="an MLP with Adam", model="mlp", optimizer="adam", epochs=5),
    F("healthy_resnet_nesterov", "healthy", set(), what="the ResNet with Nesterov SGD", optimizer="nesterov"),
    F("healthy_vgg", "healthy", set(), what="a VGG", model="vgg", epochs=5),
    F(
        "healthy_resnet_mixup",
        "healthy",
        set(),
        what="the ResNet with mixup and translate, 6 epochs",
        augment=["hflip", "translate:2"],
        mixup=0.2,
        epochs=6,
    ),
    F(
        "healthy_linear_adam",
        "healthy",
        set(),
        what="softmax regression",
        held_out=True,
        model="linear",
        optimizer="adam",
        epochs=5,
    ),
    F(
        "healthy_cnn_groupnorm_adamw",
        "healthy",
        set(),
        what="a GroupNorm CNN with AdamW",
        held_out=True,
        model="cnn",
        norm="group:8",
        optimizer="adamw",
        epochs=5,
    ),
    F(
        "healthy_resnet_5000",
        "healthy",
        set(),
        what="the ResNet on 5,000 images at batch 128",
        held_out=True,
        subset=5000,
        batch_size=128,
        epochs=3,
    ),
]


# --- models changed through the API ---


def _negative_bias(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
            nn.init.constant_(module.bias, -3.0)
    return model


def _frozen_bn(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
            module.momentum = 1e-4
    return model


MODELS: dict[str, Callable[[nn.Module], nn.Module]] = {"negative_bias": _negative_bias, "frozen_bn": _frozen_bn}


def build_model(fault: Fault, config: Any, shape: tuple[int, int, int], classes: int) -> nn.Module:
    """The configured model, initialized as `train` would, then changed by the fault."""
    from convcoach.models import create_model
    from convcoach.models.init import initialize
    from convcoach.models.spec import model_spec

    spec = model_spec(config, shape, classes)
    torch.manual_seed(config.seed)
    model = create_model(spec["name"], shape, classes, **spec["options"])
    initialize(model, config.init, config.activation, config.zero_init_residual, None)
    return MODELS[fault.api](model)


# --- data sets built from Fashion-MNIST ---


@dataclass
class Source:
    x: np.ndarray
    y: np.ndarray
    tx: np.ndarray
    ty: np.ndarray
    classes: list[str] = field(default_factory=list)


def _raw(name: str) -> Any:
    """A built-in source as convcoach reads it (its own train/test split)."""
    from convcoach.config import TrainConfig
    from convcoach.data.bundle import SourceOptions
    from convcoach.data.sources import SOURCES

    return SOURCES.get(name)(None, SourceOptions.from_config(TrainConfig()))


def fashion(n_train: int = 3000, n_test: int = 1000, seed: int = 0) -> Source:
    raw = _raw("fashion-mnist")
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(raw.train_y))[:n_train]
    test = rng.permutation(len(raw.test_y))[:n_test]
    return Source(raw.train_x[pick], raw.train_y[pick], raw.test_x[test], raw.test_y[test], list(raw.classes))


def digits() -> Source:
    """sklearn's digits as convcoach loads them: 0-255, its fixed 80/20 split."""
    raw = _raw("digits")
    return Source(raw.train_x, raw.train_y, raw.test_x, raw.test_y, list(raw.classes))


def _noise(share: float) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        y = s.y.copy()
        flip = rng.random(len(y)) < share
        y[flip] = rng.integers(0, 10, flip.sum())
        return Source(s.x, y, s.tx, s.ty, s.classes)

    return make


def _inverted_test(s: Source, rng: np.random.Generator) -> Source:
    return Source(s.x, s.y, 255 - s.tx, s.ty, s.classes)


def _mislabeled_test(s: Source, rng: np.random.Generator) -> Source:
    return Source(s.x, s.y, s.tx, (s.ty + 1) % 10, s.classes)


def _rare_shirt(s: Source, rng: np.random.Generator) -> Source:
    shirt = s.classes.index("Shirt") if "Shirt" in s.classes else 6
    keep = np.flatnonzero(s.y != shirt)
    few = np.flatnonzero(s.y == shirt)[:6]  # ~2% of the ~300 per other class
    chosen = np.sort(np.concatenate([keep, few]))
    return Source(s.x[chosen], s.y[chosen], s.tx, s.ty, s.classes)


def _leaked(s: Source, rng: np.random.Generator) -> Source:
    copied = rng.permutation(len(s.y))[: len(s.ty)]
    return Source(s.x, s.y, s.x[copied], s.y[copied], s.classes)


def _duplicated(s: Source, rng: np.random.Generator) -> Source:
    base = rng.permutation(len(s.y))[:200]
    chosen = np.tile(base, 10)
    return Source(s.x[chosen], s.y[chosen], s.tx, s.ty, s.classes)


def _shuffled(s: Source, rng: np.random.Generator) -> Source:
    return Source(s.x, rng.permutation(s.y), s.tx, s.ty, s.classes)


def _dim_test(s: Source, rng: np.random.Generator) -> Source:
    tx = (s.tx.astype(np.float32) * 0.4 + 140).round().astype(np.uint8)
    return Source(s.x, s.y, tx, s.ty, s.classes)


TINTS = (
    np.array(
        [(255, 64, 64), (64, 255, 64), (64, 64, 255), (255, 255, 64), (255, 64, 255), (64, 255, 255)]
        + [(255, 160, 64), (160, 64, 255), (64, 160, 255), (200, 200, 200)],
        dtype=np.float32,
    )
    / 255
)


def _tint(x: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Grey (N, 1, H, W) images times one RGB colour each: (N, 3, H, W)."""
    return (x.astype(np.float32) * colors[:, :, None, None]).round().astype(np.uint8)


def _color_shortcut(s: Source, rng: np.random.Generator) -> Source:
    test = TINTS[rng.integers(0, 10, len(s.ty))]
    return Source(_tint(s.x, TINTS[s.y]), s.y, _tint(s.tx, test), s.ty, s.classes)


def _color_random(s: Source, rng: np.random.Generator) -> Source:
    train, test = TINTS[rng.integers(0, 10, len(s.y))], TINTS[rng.integers(0, 10, len(s.ty))]
    return Source(_tint(s.x, train), s.y, _tint(s.tx, test), s.ty, s.classes)


def _rolled_test(s: Source, rng: np.random.Generator) -> Source:
    return Source(s.x, s.y, np.roll(s.tx, 8, axis=-1), s.ty, s.classes)


def _rare(name: str, keep_count: int) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        label = s.classes.index(name)
        chosen = np.sort(np.concatenate([np.flatnonzero(s.y != label), np.flatnonzero(s.y == label)[:keep_count]]))
        return Source(s.x[chosen], s.y[chosen], s.tx, s.ty, s.classes)

    return make


def _leaked_share(share: float) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        count = int(share * len(s.ty))
        tx, ty = s.tx.copy(), s.ty.copy()
        copied = rng.permutation(len(s.y))[:count]
        tx[:count], ty[:count] = s.x[copied], s.y[copied]
        return Source(s.x, s.y, tx, ty, s.classes)

    return make


def _duplicated_n(unique: int) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        chosen = np.tile(rng.permutation(len(s.y))[:unique], 2000 // unique)
        return Source(s.x[chosen], s.y[chosen], s.tx, s.ty, s.classes)

    return make


def _swapped(first: str, second: str) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        a, b = s.classes.index(first), s.classes.index(second)
        y = s.y.copy()
        y[s.y == a], y[s.y == b] = b, a
        return Source(s.x, y, s.tx, s.ty, s.classes)

    return make


def _rotated_test(s: Source, rng: np.random.Generator) -> Source:
    return Source(s.x, s.y, np.ascontiguousarray(np.rot90(s.tx, 1, axes=(-2, -1))), s.ty, s.classes)


def _pixel_shortcut(s: Source, rng: np.random.Generator) -> Source:
    x = s.x.copy()
    x[np.arange(len(s.y)), :, 1, 2 + 2 * s.y] = 255  # row 1, a column per class
    return Source(x, s.y, s.tx, s.ty, s.classes)


def _test_noise(share: float) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        ty = s.ty.copy()
        flip = rng.random(len(ty)) < share
        ty[flip] = rng.integers(0, 10, flip.sum())
        return Source(s.x, s.y, s.tx, ty, s.classes)

    return make


def _vflip_train(s: Source, rng: np.random.Generator) -> Source:
    return Source(np.ascontiguousarray(s.x[:, :, ::-1]), s.y, s.tx, s.ty, s.classes)


def _noisy_test(s: Source, rng: np.random.Generator) -> Source:
    noisy = s.tx.astype(np.float32) + rng.normal(0, 80, s.tx.shape)
    return Source(s.x, s.y, noisy.clip(0, 255).round().astype(np.uint8), s.ty, s.classes)


def _zoomed_test(s: Source, rng: np.random.Generator) -> Source:
    center = s.tx[:, :, 7:21, 7:21]
    return Source(s.x, s.y, np.ascontiguousarray(center.repeat(2, axis=2).repeat(2, axis=3)), s.ty, s.classes)


def _noisy(images: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    return (images.astype(np.float32) + rng.normal(0, std, images.shape)).clip(0, 255).round().astype(np.uint8)


def _noisy_leak(share: float) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        count = int(share * len(s.ty))
        tx, ty = s.tx.copy(), s.ty.copy()
        copied = rng.permutation(len(s.y))[:count]
        tx[:count], ty[:count] = _noisy(s.x[copied], 15, rng), s.y[copied]
        return Source(s.x, s.y, tx, ty, s.classes)

    return make


def _noisy_duplicated(unique: int) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        chosen = np.tile(rng.permutation(len(s.y))[:unique], 2000 // unique)
        return Source(_noisy(s.x[chosen], 10, rng), s.y[chosen], s.tx, s.ty, s.classes)

    return make


def _merged(moved: str, into: str) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        y = s.y.copy()
        y[y == s.classes.index(moved)] = s.classes.index(into)
        return Source(s.x, y, s.tx, s.ty, s.classes)

    return make


def _test_only(names: tuple[str, ...]) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        keep = np.isin(s.ty, [s.classes.index(name) for name in names])
        return Source(s.x, s.y, s.tx[keep], s.ty[keep], s.classes)

    return make


def _saturated_train(s: Source, rng: np.random.Generator) -> Source:
    return Source((s.x.astype(np.float32) * 3).clip(0, 255).astype(np.uint8), s.y, s.tx, s.ty, s.classes)


def _blurred_test(s: Source, rng: np.random.Generator) -> Source:
    tx = s.tx.astype(np.float32)
    for _ in range(2):  # a 3x3 box filter twice: close to a Gaussian of std ~1.2 px
        padded = np.pad(tx, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
        h, w = tx.shape[2:]
        tx = sum(padded[:, :, i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9
    return Source(s.x, s.y, tx.round().astype(np.uint8), s.ty, s.classes)


def _shrunk_test(s: Source, rng: np.random.Generator) -> Source:
    n, c, h, w = s.tx.shape
    small = s.tx.reshape(n, c, h // 2, 2, w // 2, 2).astype(np.float32).mean(axis=(3, 5))
    tx = np.zeros_like(s.tx)
    tx[:, :, h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2] = small.round().astype(np.uint8)
    return Source(s.x, s.y, tx, s.ty, s.classes)


def _rare_many(names: tuple[str, ...], keep_count: int) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        chosen = np.ones(len(s.y), dtype=bool)
        for name in names:
            members = np.flatnonzero(s.y == s.classes.index(name))
            chosen[members[keep_count:]] = False
        return Source(s.x[chosen], s.y[chosen], s.tx, s.ty, s.classes)

    return make


def _gamma_test(s: Source, rng: np.random.Generator) -> Source:
    return Source(s.x, s.y, (np.sqrt(s.tx / 255.0) * 255).round().astype(np.uint8), s.ty, s.classes)


def _noisy_train(std: float) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        return Source(_noisy(s.x, std, rng), s.y, s.tx, s.ty, s.classes)

    return make


def _shifted_labels(share: float) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        y = s.y.copy()
        moved = rng.random(len(y)) < share
        y[moved] = (y[moved] + 1) % len(s.classes)
        return Source(s.x, y, s.tx, s.ty, s.classes)

    return make


def _down4_test(s: Source, rng: np.random.Generator) -> Source:
    return Source(s.x, s.y, np.ascontiguousarray(np.roll(s.tx, 4, axis=2)), s.ty, s.classes)


def _one_class_inverted_test(name: str) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        tx = s.tx.copy()
        chosen = s.ty == s.classes.index(name)
        tx[chosen] = 255 - tx[chosen]
        return Source(s.x, s.y, tx, s.ty, s.classes)

    return make


def _flipped_leak(share: float) -> Callable[[Source, np.random.Generator], Source]:
    """`share` of the test split replaced by training images mirrored left to right, with their labels."""

    def make(s: Source, rng: np.random.Generator) -> Source:
        tx, ty = s.tx.copy(), s.ty.copy()
        slots = rng.permutation(len(ty))[: int(share * len(ty))]
        copied = rng.permutation(len(s.y))[: len(slots)]
        tx[slots], ty[slots] = s.x[copied][..., ::-1], s.y[copied]
        return Source(s.x, s.y, tx, ty, s.classes)

    return make


def _cycled(names: tuple[str, ...]) -> Callable[[Source, np.random.Generator], Source]:
    """Training labels moved around a cycle of classes (each to the next); the test split untouched."""

    def make(s: Source, rng: np.random.Generator) -> Source:
        y = s.y.copy()
        ids = [s.classes.index(n) for n in names]
        for here, there in zip(ids, ids[1:] + ids[:1]):
            y[s.y == here] = there
        return Source(s.x, y, s.tx, s.ty, s.classes)

    return make


def _test_swapped(first: str, second: str) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        a, b = s.classes.index(first), s.classes.index(second)
        ty = s.ty.copy()
        ty[s.ty == a], ty[s.ty == b] = b, a
        return Source(s.x, s.y, s.tx, ty, s.classes)

    return make


def _repeated(name: str, times: int) -> Callable[[Source, np.random.Generator], Source]:
    """Every training image of one class `times` times over."""

    def make(s: Source, rng: np.random.Generator) -> Source:
        chosen = np.flatnonzero(s.y == s.classes.index(name))
        rows = np.concatenate([np.arange(len(s.y))] + [chosen] * (times - 1))
        return Source(s.x[rows], s.y[rows], s.tx, s.ty, s.classes)

    return make


def _half_vflipped_test(s: Source, rng: np.random.Generator) -> Source:
    tx = s.tx.copy()
    half = rng.permutation(len(tx))[: len(tx) // 2]
    tx[half] = tx[half][:, :, ::-1]
    return Source(s.x, s.y, tx, s.ty, s.classes)


def _low_contrast_train(s: Source, rng: np.random.Generator) -> Source:
    return Source((s.x.astype(np.float32) * 0.3 + 90).round().astype(np.uint8), s.y, s.tx, s.ty, s.classes)


def _framed_test(s: Source, rng: np.random.Generator) -> Source:
    tx = s.tx.copy()
    tx[..., :2, :], tx[..., -2:, :], tx[..., :, :2], tx[..., :, -2:] = 255, 255, 255, 255
    return Source(s.x, s.y, tx, s.ty, s.classes)


def _long_tail(s: Source, rng: np.random.Generator) -> Source:
    """Class k keeps 300 / 2^k of its training images (at least 2): 300, 150, 75, ... 2."""
    keep = [np.flatnonzero(s.y == k)[: max(2, 300 >> k)] for k in range(len(s.classes))]
    chosen = np.sort(np.concatenate(keep))
    return Source(s.x[chosen], s.y[chosen], s.tx, s.ty, s.classes)


def _right3_train(s: Source, rng: np.random.Generator) -> Source:
    return Source(np.ascontiguousarray(np.roll(s.x, 3, axis=3)), s.y, s.tx, s.ty, s.classes)


def _jpeg_test(quality: int) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        from PIL import Image

        tx = s.tx.copy()
        for i, image in enumerate(s.tx[:, 0]):
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
            tx[i, 0] = np.asarray(Image.open(buffer))
        return Source(s.x, s.y, tx, s.ty, s.classes)

    return make


CONFUSABLE = {"T-shirt/top": "Shirt", "Shirt": "T-shirt/top", "Pullover": "Coat", "Coat": "Pullover"}
CONFUSABLE |= {"Sandal": "Sneaker", "Sneaker": "Sandal", "Ankle boot": "Sneaker", "Dress": "Coat"}
CONFUSABLE |= {"Trouser": "Dress", "Bag": "Shirt"}


def _confusable(share: float) -> Callable[[Source, np.random.Generator], Source]:
    """`share` of the training labels moved to the class each is most often taken for."""

    def make(s: Source, rng: np.random.Generator) -> Source:
        y = s.y.copy()
        moved = rng.random(len(y)) < share
        partner = np.array([s.classes.index(CONFUSABLE[name]) for name in s.classes])
        y[moved] = partner[s.y[moved]]
        return Source(s.x, y, s.tx, s.ty, s.classes)

    return make


def _blank_test(share: float) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        tx = s.tx.copy()
        tx[rng.permutation(len(tx))[: int(share * len(tx))]] = 0
        return Source(s.x, s.y, tx, s.ty, s.classes)

    return make


def _red_zeroed_test(s: Source, rng: np.random.Generator) -> Source:
    tinted = _color_random(s, rng)
    tx = tinted.tx.copy()
    tx[:, 0] = 0
    return Source(tinted.x, tinted.y, tx, tinted.ty, tinted.classes)


def _test_offset(share: float) -> Callable[[Source, np.random.Generator], Source]:
    def make(s: Source, rng: np.random.Generator) -> Source:
        ty = s.ty.copy()
        moved = rng.random(len(ty)) < share
        ty[moved] = (ty[moved] + 1) % len(s.classes)
        return Source(s.x, s.y, s.tx, ty, s.classes)

    return make


def _right2_test(s: Source, rng: np.random.Generator) -> Source:
    tx = np.zeros_like(s.tx)
    tx[..., 2:] = s.tx[..., :-2]  # moved right, the left edge blank (no wrap-around)
    return Source(s.x, s.y, tx, s.ty, s.classes)


def _vflipped_test(s: Source, rng: np.random.Generator) -> Source:
    return Source(s.x, s.y, np.ascontiguousarray(s.tx[:, :, ::-1]), s.ty, s.classes)


def _dominant(name: str, share: float) -> Callable[[Source, np.random.Generator], Source]:
    """A training split where one class makes up `share` of the images (the others cut evenly)."""

    def make(s: Source, rng: np.random.Generator) -> Source:
        big = s.classes.index(name)
        keep_big = np.flatnonzero(s.y == big)
        per_other = max(1, int(len(keep_big) * (1 - share) / share / (len(s.classes) - 1)))
        others = [np.flatnonzero(s.y == k)[:per_other] for k in range(len(s.classes)) if k != big]
        chosen = np.sort(np.concatenate([keep_big, *others]))
        return Source(s.x[chosen], s.y[chosen], s.tx, s.ty, s.classes)

    return make


DATASETS: dict[str, Callable[[Source, np.random.Generator], Source]] = {
    "vflipped_test": _vflipped_test,
    "trousers90": _dominant("Trouser", 0.9),
    "right2_test": _right2_test,
    "noise20": _noise(0.2),
    "color_red_zeroed_test": _red_zeroed_test,
    "test_offset50": _test_offset(0.5),
    "jpeg10_test": _jpeg_test(10),
    "confusable25": _confusable(0.25),
    "blank20_test": _blank_test(0.2),
    "framed_test": _framed_test,
    "long_tail": _long_tail,
    "leaked2": _leaked_share(0.02),
    "right3_train": _right3_train,
    "test_swap_sandal_sneaker": _test_swapped("Sandal", "Sneaker"),
    "bags_x20": _repeated("Bag", 20),
    "half_vflipped_test": _half_vflipped_test,
    "low_contrast_train": _low_contrast_train,
    "sneaker_inverted_test": _one_class_inverted_test("Sneaker"),
    "flipped_leak30": _flipped_leak(0.3),
    "cycled_3": _cycled(("T-shirt/top", "Trouser", "Pullover")),
    "down4_test": _down4_test,
    "no_sandal": _rare("Sandal", 0),
    "gamma_test": _gamma_test,
    "noisy_train60": _noisy_train(60),
    "shift30": _shifted_labels(0.3),
    "rare7": _rare("7", 3),
    "blurred_test": _blurred_test,
    "shrunk_test": _shrunk_test,
    "rare_coat_pullover": _rare_many(("Coat", "Pullover"), 8),
    "noise40": _noise(0.4),
    "test_hard_classes": _test_only(("T-shirt/top", "Pullover", "Coat", "Shirt")),
    "saturated_train": _saturated_train,
    "noisy_leak30": _noisy_leak(0.3),
    "noisy_duplicated200": _noisy_duplicated(200),
    "shirt_as_tshirt": _merged("Shirt", "T-shirt/top"),
    "noisy_test": _noisy_test,
    "zoomed_test": _zoomed_test,
    "rare_bag30": _rare("Bag", 30),
    "test_noise30": _test_noise(0.3),
    "vflip_train": _vflip_train,
    "swap_trouser_bag": _swapped("Trouser", "Bag"),
    "rotated_test": _rotated_test,
    "pixel_shortcut": _pixel_shortcut,
    "noise30": _noise(0.3),
    "rolled_test": _rolled_test,
    "dim_test": _dim_test,
    "rare3": _rare("3", 5),
    "noise80": _noise(0.8),
    "color_shortcut": _color_shortcut,
    "color_random": _color_random,
    "noise70": _noise(0.7),
    "rare_bag": _rare("Bag", 9),
    "leaked30": _leaked_share(0.3),
    "duplicated100": _duplicated_n(100),
    "noise60": _noise(0.6),
    "noise45": _noise(0.45),
    "inverted_test": _inverted_test,
    "mislabeled_test": _mislabeled_test,
    "rare_shirt": _rare_shirt,
    "leaked": _leaked,
    "duplicated": _duplicated,
    "shuffled": _shuffled,
    "noise50": _noise(0.5),
    "rare_coat": _rare("Coat", 6),
}


BUILTIN = {"digits"}  # convcoach's own sets, named as they are (no npz built)


def make_data(key: str, folder: Path, source: Source) -> str:
    """Build the fault's data under `folder`; returns the --data spec."""
    rng = np.random.default_rng(1)
    if key in BUILTIN:
        return key
    if key.startswith("digits:"):  # a variant of sklearn's digits instead of Fashion-MNIST
        source = digits()
    if key == "corrupt_folder":
        return _corrupt_folder(folder / key, source, rng)
    if key == "folder":
        return _corrupt_folder(folder / key, source, rng, per_class=150, corrupt=0.0)
    if key == "folder_twins":
        return _corrupt_folder(folder / key, source, rng, per_class=100, corrupt=0.0, twins=True)
    if key == "folder_rare_bag":
        return _corrupt_folder(folder / key, source, rng, per_class=80, corrupt=0.0, counts={"Bag": 3})
    made = DATASETS[key.removeprefix("digits:")](source, rng)
    path = folder / f"{key.replace(':', '-')}.npz"

    def hw(images: np.ndarray) -> np.ndarray:  # grey as NHW, colour as NHWC
        return images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)

    np.savez(path, x=hw(made.x), y=made.y, x_test=hw(made.tx), y_test=made.ty, classes=np.array(made.classes))
    return f"npz:{path}"


def _corrupt_folder(
    root: Path,
    source: Source,
    rng: np.random.Generator,
    per_class: int = 60,
    corrupt: float = 0.3,
    counts: dict[str, int] | None = None,
    twins: bool = False,
) -> str:
    """A class-per-folder tree of PNGs (`per_class` each, or `counts[name]`), `corrupt` of them truncated;
    `twins`: each file written twice, under two names (a scraped set's duplicates)."""
    from PIL import Image

    for label, name in enumerate(source.classes):
        target = root / name.replace("/", "-")
        target.mkdir(parents=True, exist_ok=True)
        for index in np.flatnonzero(source.y == label)[: (counts or {}).get(name, per_class)]:
            buffer = io.BytesIO()
            Image.fromarray(source.x[index, 0]).save(buffer, format="PNG")
            data = buffer.getvalue()
            if rng.random() < corrupt:
                data = data[: len(data) // 3]  # truncated: unreadable
            (target / f"{index}.png").write_bytes(data)
            if twins:
                (target / f"{index}_copy.png").write_bytes(data)
    return str(root)
