"""Lightning half of graceful stopping: Ctrl-C joins SIGTERM's path, and the interrupted state is saved.

Lightning itself turns SIGTERM into ``SIGTERMException`` after the current step (on every DDP rank at once) but
saves nothing; Ctrl-C would raise ``KeyboardInterrupt`` wherever the step happens to be.
"""

import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException


class SaveOnInterrupt(L.Callback):
    """On SIGTERM (or Ctrl-C, forwarded as SIGTERM) save ``dirpath/filename``, the newest checkpoint, mid-epoch
    if need be: loops, data loader position, metric states and RNG included, so resuming continues exactly."""

    def __init__(self, dirpath: str | Path, filename: str = "last.ckpt") -> None:
        self.path = Path(dirpath) / filename
        self.signal_name = "SIGTERM"
        self._previous_sigint: Any = None

    def _forward_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_name == "SIGINT":
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.signal_name = "SIGINT"
        os.kill(os.getpid(), signal.SIGTERM)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # From the start of fit, sanity check included: a Ctrl-C there stops after the first training step, saved.
        if stage == "fit" and threading.current_thread() is threading.main_thread():
            self._previous_sigint = signal.signal(signal.SIGINT, self._forward_sigint)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._previous_sigint is not None:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException):
            trainer.save_checkpoint(self.path)
