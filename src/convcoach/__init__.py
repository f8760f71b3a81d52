"""convcoach: train convolutional image classifiers well, with a coach that checks, diagnoses and explains."""

__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it)

from .threads import mark  # noqa: E402

mark()  # before torch loads: the window in which other processes' load is measured (threads.py)

from . import coach, logs, report  # noqa: E402, F401  (each registers its callbacks for every run)
from .config import TrainConfig, load_config  # noqa: E402
from .errors import ConfigError, TrainingDiverged  # noqa: E402
from .train.loop import Trainer, train  # noqa: E402

__all__ = ["ConfigError", "TrainConfig", "Trainer", "TrainingDiverged", "__version__", "load_config", "train"]
