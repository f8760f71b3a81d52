"""The exception for user mistakes (the CLI prints it as one line and exits 2), and the one for a run
that diverged (exit 1)."""


class ConfigError(ValueError):
    """Bad user input: a config key or value, a data file, a checkpoint."""


class WriteError(ConfigError):
    """A file could not be written (a full disk, no permission): one line naming it, as a ConfigError."""


class TrainingDiverged(RuntimeError):
    """`convcoach.train()` and `finetune()` raise it when the run diverged, as the CLI exits 1; the run's
    files are written and `summary` holds what summary.json does (`Trainer.fit` returns it instead)."""

    def __init__(self, summary: dict) -> None:
        super().__init__(f"training diverged: {summary.get('stop_message')} (run: {summary.get('run_dir')})")
        self.summary = summary
