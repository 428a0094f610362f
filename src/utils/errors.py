"""The error a user can fix from the command line: train.py prints its message instead of a traceback."""


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key, the value and what would work."""
