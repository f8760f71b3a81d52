"""A run's records: env.json (where it ran), the test pass over the best snapshot (with test-time
augmentation) and summary.json (what ran and what it reached)."""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import __version__
from ..evaluate.metrics import confusion_matrix
from ..evaluate.passes import Evaluation, evaluate
from ..evaluate.trained import TrainedModel
from ..evaluate.tta import TTAModel, parse_tta
from ..files import write_json
from ..recipes import recipe_rule
from .callbacks import Checkpointer
from .checkpoint import load_checkpoint, load_model_state
from .distributed import unwrap

if TYPE_CHECKING:
    from ..config import TrainConfig
    from ..data import DataBundle
    from .loop import Trainer

# the final test pass runs in full precision whatever the training precision, as `eval` and `predict`
# do, so a run's summary and a later `convcoach eval` of its best.pt report the same accuracy
TEST_PRECISION = "fp32"


def test_best(trainer: Trainer) -> tuple[Evaluation, Evaluation]:
    """Load best.pt (when written) and evaluate it on the test split: (the reported result, the
    result without test-time augmentation); the two are one when the run has no TTA."""
    best_path = trainer.run_dir / "best.pt"
    if best_path.is_file():
        load_model_state(unwrap(trainer.model), load_checkpoint(best_path)["model_state"], str(best_path))
    loader = trainer.loader(trainer.data.test)
    plain = trainer.evaluate(loader, TEST_PRECISION)
    spec = trainer.config.resolved_tta()
    if not spec:
        return plain, plain
    # the lectures' test-time augmentation: average the softmax over views of each image
    trained = TrainedModel(
        unwrap(trainer.model), trainer.normalizer, list(trainer.data.classes), trainer.config, trainer.spec, best_path
    )
    model = TTAModel(trained.model, parse_tta(spec)(trained))
    num_classes = trainer.data.num_classes
    return evaluate(model, loader, trainer.eval_loss_fn, num_classes, TEST_PRECISION, trainer.device), plain


def split_by_class(trainer: Trainer, test: Evaluation) -> dict[str, Any]:
    """The best snapshot's per-class accuracy on validation (one fp32 pass) beside the test split's,
    with each class's image count in both and the class its test images are most often taken for:
    what the coach reads to tell a test split labelled or drawn unlike training, class by class."""
    classes, count = list(trainer.data.classes), trainer.data.num_classes
    out: dict[str, Any] = {"test_class_counts": torch.bincount(test.labels, minlength=count).tolist()}
    wrong = confusion_matrix(test.predictions, test.labels, count).fill_diagonal_(0)  # the mistakes only
    most, taken = (column.tolist() for column in wrong.max(dim=1))
    out["test_taken_for"] = {  # [the class, the share of this class's test images taken for it]
        classes[i]: [classes[taken[i]], round(most[i] / out["test_class_counts"][i], 4)]
        for i in range(count)
        if most[i]
    }
    if trainer.data.val is not None and len(trainer.data.val):
        val = trainer.evaluate(trainer.val_loader, TEST_PRECISION)
        out["val_per_class_accuracy"] = dict(zip(classes, val.per_class_accuracy))
        out["val_class_counts"] = torch.bincount(val.labels, minlength=count).tolist()
    return out


def data_summary(data: DataBundle) -> dict[str, Any]:
    """summary.json's "data": the set's name, classes, image shape, split sizes and skipped files."""
    return {
        "name": data.name,
        "classes": data.classes,
        "shape": list(data.shape),
        "source_shape": list(data.source_shape) if data.source_shape else None,
        "train": len(data.train),
        "val": len(data.val) if data.val else 0,
        "test": len(data.test),
        "skipped_files": data.skipped,
    }


def run_summary(trainer: Trainer, result: Evaluation | None, plain: Evaluation | None) -> dict[str, Any]:
    """summary.json: the run's data, model, settings, length, best epoch and test figures."""
    data, state, config = trainer.data, trainer.state, trainer.config
    checkpointer = next((c for c in trainer.callbacks if isinstance(c, Checkpointer)), None)
    tested = result is not None
    return {
        "command": "train",
        "status": "diverged" if state.stop_reason == "diverged" else "completed",
        "stop_reason": state.stop_reason,
        "stop_message": state.stop_message,
        "run_dir": str(trainer.run_dir),
        "data": data_summary(data),
        "model": trainer.spec,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "init": trainer.init_used,
        # the peak LR used: --lr or the optimizer's default, scaled by batch_size / base_batch_size
        "lr": trainer.base_lr,
        "precision": trainer.precision,
        "ema": config.ema or None,
        "epochs_run": state.epoch,
        "steps": state.step,
        "best_epoch": checkpointer.best_epoch if checkpointer else None,
        "best_val_acc": checkpointer.best if checkpointer and checkpointer.metric == "val_acc" else None,
        "best_selected_by": checkpointer.metric if checkpointer else None,
        "train_seconds": round(state.elapsed, 2),
        "final": state.history[-1] if state.history else None,
        "test_accuracy": result.accuracy if result else None,
        "test_loss": result.loss if result else None,
        "test_per_class_accuracy": dict(zip(data.classes, result.per_class_accuracy)) if result else None,
        **(split_by_class(trainer, result) if result else {}),
        "tta": config.resolved_tta() if tested else None,
        "test_accuracy_without_tta": plain.accuracy if plain else None,
    }


def epochs_rule(config: TrainConfig) -> str:
    """The run's length in words: fixed, or the time rule (the default recipe's when --epochs is unset)."""
    if config.time_budget:
        return (
            f"as many of {config.epochs} epochs as fit in {config.time_budget:g} minutes of wall time, "
            "planned after epoch 1 from its measured time (the schedule re-planned to that length)"
        )
    return f"{config.epochs} epochs"


def write_env(trainer: Trainer) -> None:
    """env.json: versions, the machine, and the precision the run chose and why."""
    write_json(
        trainer.run_dir / "env.json",
        {
            "convcoach": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "seed": trainer.config.seed,
            "device": str(trainer.device),
            "precision": trainer.precision,
            "precision_reason": trainer.precision_reason,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(),
            "threads_reason": trainer.threads_reason,  # threads.py: the cores other work left free
            "epochs_rule": epochs_rule(trainer.config),  # train/budget.py adds "planned_epochs" after epoch 1
            # a recipe's keys for fp32 runs (the long recipe's narrower net), and whether they applied
            "recipe_rule": recipe_rule(trainer.config.recipe, trainer.config.precision, trainer.config.device),
            "processes": trainer.dist.world_size,  # DDP processes (1 without --nproc)
            "data_source": trainer.data.source,  # the folder, file or bundled set the data were read from
            "lr": trainer.base_lr,
            "class_weights": trainer.class_weights,  # the training loss's weight per class (None: unweighted)
            "sampler": trainer.config.sampler,
            # --lr auto (or an unset --lr whose default was not measured for this model): the range test's choice
            "lr_choice": trainer.lr_choice.to_dict() if trainer.lr_choice is not None else None,
        },
    )
