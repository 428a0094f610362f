"""Errors a user can act on: train.py prints their message instead of a traceback."""


class RunError(Exception):
    """A run that cannot start or cannot go on; the message says why and what to change."""


class ConfigError(RunError, ValueError):
    """A config value that cannot work; the message names the key, the value and what would work."""


class DivergedError(RunError):
    """The loss became NaN or infinite; training on it would only waste time."""
