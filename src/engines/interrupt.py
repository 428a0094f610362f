"""SIGTERM (preemption) and Ctrl-C: stop after the current step, save a checkpoint, say how to resume."""

import logging
import shlex
import signal
import threading
from types import FrameType
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

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
    """While active, SIGTERM and SIGINT only set ``signal_name``; the loop checks it after each step. A second
    Ctrl-C stops at once. Handlers can only be installed from the main thread; elsewhere this does nothing."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        log.warning("%s received: stopping after the current step to save a checkpoint", self.signal_name)

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
