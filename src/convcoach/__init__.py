"""convcoach: train convolutional image classifiers well, with a coach that checks, diagnoses and explains."""
__version__ = "0.1.0"

from .config import TrainConfig, load_config  # noqa: E402
from .errors import ConfigError, TrainingDiverged  # noqa: E402
from .train.loop import Trainer, train  # noqa: E402

__all__ = ["ConfigError", "TrainConfig", "Trainer", "TrainingDiverged", "__version__", "load_config", "train"]
