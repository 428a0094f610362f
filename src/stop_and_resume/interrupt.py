"""SIGTERM (preemption) and Ctrl-C in every phase of a run, for both engines.

Inside a training loop (``StopRequest.at_step_boundaries``) a signal only sets ``signal_name``: the loop stops
after the current step and saves a checkpoint. Anywhere else (decoding data, setting up, testing) nothing unsaved
is worth waiting for, so the signal stops the run at once with :class:`RunInterruptedError`; the checkpoints
already written are what a resumed run continues. A second Ctrl-C always stops at once.
"""

import logging
import os
import shlex
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from src.errors import RunInterruptedError

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def resume_command() -> str:
    """The command that continues this run: its own overrides plus ``resume=auto``."""
    if not HydraConfig.initialized():
        return "train(cfg) again with resume=auto"
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return "the same multirun command again: finished jobs are skipped, this one continues"
    kept = [o for o in hydra_cfg.overrides.task if not o.startswith(("resume=", "ckpt_path="))]
    return shlex.join(["python", "train.py", *kept, "resume=auto"])


def interrupted_message(signal_name: str, epoch: int, step: int, checkpoint: str) -> str:
    return f"{signal_name} at epoch {epoch}, step {step}: saved {checkpoint}. To resume, run: {resume_command()}"


class StopRequest:
    """The run's handler of SIGTERM and SIGINT while active (main thread only; elsewhere it does nothing).

    ``forward`` (set by an engine) is called with the first deferred signal: to pass it on to processes the run
    started itself, and to wake what waits for it (``SaveOnInterrupt``'s per-batch hook)."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.forward: Callable[[int], None] | None = None
        self.deferring = False
        self._previous: dict[int, Any] = {}
        self._pid = os.getpid()

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:
            return  # a forked data loader worker: the main process decides
        name = signal.Signals(signum).name
        if self.deferring and not (self.signal_name is not None and signum == signal.SIGINT):
            if self.signal_name is None:
                self.signal_name = name
                log.warning("%s received: stopping after the current step to save a checkpoint", name)
                if self.forward is not None:
                    self.forward(signum)
            return
        again = " again" if self.signal_name is not None else ""
        self.signal_name = name
        raise RunInterruptedError(
            f"{name}{again}: stopped at once, outside a training step (the checkpoints written so far are kept). "
            f"To resume, run: {resume_command()}"
        )

    def install(self) -> None:
        """(Re)claim both signals, e.g. over handlers a library registered after this one."""
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                previous = signal.signal(signum, self.handle)
                self._previous.setdefault(signum, previous)

    @contextmanager
    def at_step_boundaries(self) -> Iterator["StopRequest"]:
        """Within this block a signal waits for the training loop, which checks ``signal_name`` after each step."""
        self.deferring = True
        try:
            yield self
        finally:
            self.deferring = False

    def __enter__(self) -> "StopRequest":
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


@contextmanager
def sigterm_held() -> Iterator[None]:
    """For a command around its run: a SIGTERM that comes after the run has ended, while the command says how (a
    launcher stopping every process once one of them failed), waits until it has said so, then stops the process as
    it would have. Inside the run, :class:`StopRequest` handles it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if held:
            signal.raise_signal(signal.SIGTERM)
