"""Lightning half of graceful stopping: the run's SIGTERM or Ctrl-C stops training after a step, saved.

Lightning stops at a step boundary when its SIGTERM flag is set (``_TrainingEpochLoop.on_advance_end`` and
``_FitLoop.on_advance_end`` raise ``SIGTERMException``), but it also checks that flag between validation batches
(``_EvaluationLoop._evaluation_step``), and a checkpoint saved in the middle of a validation cannot be resumed: the
restored loops skip the rest of that validation, so ``val/loss`` is never logged again. This callback therefore
takes the signals over from Lightning's handler and sets the flag itself, only outside validations.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from src.stop_and_resume.interrupt import StopRequest


class SaveOnInterrupt(L.Callback):
    """On SIGTERM or Ctrl-C during fit, stop after the current training step (or the validation under way) and
    save ``dirpath/filename``: loops, data loader position, metric states and RNG included, so resuming continues
    exactly. ``stop`` is the run's :class:`StopRequest`; without one, Lightning's own SIGTERM handling applies."""

    def __init__(self, dirpath: str | Path, filename: str = "last.ckpt") -> None:
        self.path = Path(dirpath) / filename
        self.stop: StopRequest | None = None
        self._held = False
        self._forward_to: Callable[[int], None] | None = None  # processes Lightning started, to pass a signal on
        # Lightning calls every per-batch hook of every callback; this one has nothing to do before a signal, so it
        # stays hidden (Lightning skips a hook that is not callable) until the signal shows it.
        self.on_train_batch_end = None  # type: ignore[assignment]

    @property
    def signal_name(self) -> str:
        return (self.stop.signal_name if self.stop is not None else None) or "SIGTERM"

    @staticmethod
    def _set_flag(trainer: L.Trainer, value: bool) -> None:
        trainer._signal_connector.received_sigterm = value  # what Lightning's own SIGTERM handler sets

    def _take_over_signals(self, trainer: L.Trainer) -> None:
        # Called after Lightning registered its SIGTERM handler at the start of the stage; it restores ours after.
        if self.stop is None:
            return
        self.stop.install()
        launcher = trainer.strategy.launcher
        self._forward_to = launcher.kill if launcher is not None else None
        self.stop.forward = self._signal_received
        self.stop.deferring = True

    def _signal_received(self, signum: int) -> None:
        """The first signal of the fit, from the run's handler: stop after the batch that closes a window."""
        vars(self).pop("on_train_batch_end", None)  # the class's hook shows again
        if self._forward_to is not None:
            self._forward_to(signum)

    def on_sanity_check_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._take_over_signals(trainer)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._take_over_signals(trainer)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # Also cleared inside a window: a signal during the sanity check sets the flag before any window opens.
        self._set_flag(trainer, self._signalled() and self._window_closed(trainer))

    def _signalled(self) -> bool:
        return self.stop is not None and self.stop.deferring and self.stop.signal_name is not None

    def _window_closed(self, trainer: L.Trainer) -> bool:
        """Whether the latest training batch ended with an optimizer step: the gradients summed so far in a window of
        accumulated batches are not saved, so a run stopped inside one would resume without them."""
        batches = trainer.fit_loop.epoch_loop.batch_progress.current.processed  # 0 before the first
        return batches % trainer.accumulate_grad_batches == 0 or batches >= trainer.num_training_batches

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.stop is not None and trainer.state.fn == TrainerFn.FITTING:
            self._held = trainer.received_sigterm
            self._set_flag(trainer, False)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.stop is not None and trainer.state.fn == TrainerFn.FITTING:
            self._set_flag(trainer, self._held or (self._signalled() and self._window_closed(trainer)))
            self._held = False

    def _release(self) -> None:
        if self.stop is not None:
            self.stop.deferring = False
            self.stop.forward = None

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._release()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._release()
        # Only fit's state is worth saving; while testing, the module holds the best weights, not the last ones.
        if isinstance(exception, SIGTERMException) and trainer.state.fn == TrainerFn.FITTING:
            trainer.save_checkpoint(self.path)  # StopOnNonFinite's check comes first: a diverged run saves nothing
