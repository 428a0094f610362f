"""Errors a user can act on: the entry points print their message instead of a traceback."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager


def one_line(error: BaseException) -> str:
    """An error's message on one line: Hydra, torch and torchvision spread theirs over several."""
    return " ".join(str(error).split())


class RunError(Exception):
    """A run that cannot start or cannot go on; the message says why and what to change."""


class ConfigError(RunError, ValueError):
    """A config value that cannot work; the message names the key, the value and what would work."""


class PeerLostError(RunError):
    """Another process of a multi-process run died: this one stops too, and the run can resume."""


class CheckpointWriteError(RunError):
    """A checkpoint could not be written (a full disk, a file-size limit); the one before it is intact."""


class DivergedError(RunError):
    """The loss became NaN or infinite; training on it would only waste time."""


@contextmanager
def exit_on_run_error(log: logging.Logger) -> Iterator[None]:
    """For command-line entry points: a :class:`RunError` becomes one logged line and exit status 1."""
    try:
        yield
    except RunError as err:
        log.error("%s", err)
        raise SystemExit(1) from None


class RunInterruptedError(RunError):
    """SIGTERM or Ctrl-C: a checkpoint was saved and the run stopped cleanly; the message says how to resume."""


class TrialPrunedError(RunError):
    """An Optuna pruner stopped this sweep job early: its metric so far trails the other trials'."""
