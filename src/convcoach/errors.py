"""The one exception type for user mistakes; the CLI prints it as one line and exits 2."""


class ConfigError(ValueError):
    """Bad user input: a config key or value, a data file, a checkpoint."""


class WriteError(ConfigError):
    """A file could not be written (a full disk, no permission): one line naming it, as a ConfigError."""
