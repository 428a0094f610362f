"""Lightning's ModelCheckpoint and EarlyStopping callbacks, by hand, for the scratch loop: which checkpoint files an
epoch writes (the best one, ``last.ckpt``) and when the monitored metric stopped improving for long enough."""

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from src.engines.distributed import barrier
from src.engines.loop_inputs import LoopSettings
from src.stop_and_resume.checkpoints import copy_into_run, save_atomic


class CheckpointKeeper:
    """As ``settings`` say: ``checkpoint_dir`` None, no checkpoints at all; ``save_best``, keep the best epoch's
    checkpoint (``callbacks.model_checkpoint``); ``last_every_n_epochs``, refresh ``last.ckpt`` after epochs n, 2n,
    ..., 0 never (``callbacks.last_checkpoint``); ``patience`` None, no early stopping."""

    def __init__(self, settings: LoopSettings, rank: int) -> None:
        self.settings, self.directory = settings, settings.checkpoint_dir
        self.rank = rank  # every process knows the paths; rank 0 writes the files
        self.best_score: float | None = None
        self.best_path: Path | None = None
        self.last_path: Path | None = None  # last.ckpt, once written
        self.bad_epochs = 0

    @property
    def tested_checkpoint(self) -> Path | None:
        """What Lightning tests: the best epoch's checkpoint; with no best kept, the newest last.ckpt."""
        return self.best_path if self.settings.save_best else self.last_path

    def saves_last(self, epoch: int) -> bool:
        every = self.settings.last_every_n_epochs
        return self.directory is not None and every > 0 and (epoch + 1) % every == 0

    def _improved(self, score: float) -> bool:
        if self.best_score is None:
            return math.isfinite(score)
        if self.settings.mode == "min":
            return score < self.best_score - self.settings.min_delta
        return score > self.best_score + self.settings.min_delta

    def end_of_epoch(self, epoch: int, score: float | None, checkpoint: Callable[[], dict[str, Any]]) -> bool:
        """Write the checkpoints due after ``epoch`` (``checkpoint()`` makes their contents); return whether early
        stopping says stop. ``score``: None in epochs without validation, which neither improve nor count against
        patience."""
        improved = score is not None and self._improved(score)
        if improved:
            self.best_score, self.bad_epochs = score, 0
        elif score is not None:
            self.bad_epochs += 1
        save_best = improved and self.settings.save_best and self.directory is not None
        save_last = self.saves_last(epoch)
        if save_best or save_last:
            assert self.directory is not None
            previous = self.best_path
            if save_best:
                self.best_path = self.directory / f"epoch_{epoch:03d}.ckpt"
            if save_last:
                self.last_path = self.directory / "last.ckpt"
            if self.rank == 0:
                contents = checkpoint()
                if save_best:
                    save_atomic(contents, self.best_path)
                    if previous is not None and previous != self.best_path:
                        previous.unlink(missing_ok=True)
                if save_last:
                    save_atomic(contents, self.directory / "last.ckpt")
            barrier()
        patience = self.settings.patience
        return patience is not None and self.bad_epochs >= patience and epoch + 1 >= self.settings.min_epochs

    def state_dict(self) -> dict[str, Any]:
        return {
            "score": self.best_score,
            "path": str(self.best_path) if self.best_path else None,
            "bad_epochs": self.bad_epochs,
            "last_path": str(self.last_path) if self.last_path else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """A run resumed from another directory copies the files it tracks into its own, so it stands alone."""
        self.best_score, self.bad_epochs = state.get("score"), state.get("bad_epochs", 0)
        self.best_path = Path(state["path"]) if state.get("path") else None
        self.last_path = Path(state["last_path"]) if state.get("last_path") else None
        tracked = self.best_path or self.last_path
        if self.directory is not None and tracked is not None:
            self.best_path, self.last_path = (
                copy_into_run(path, tracked.parent, self.directory, copy=self.rank == 0)
                for path in (self.best_path, self.last_path)
            )
