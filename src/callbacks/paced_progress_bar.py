"""Lightning's rich progress bar, told the step count and metrics a few times a second instead of after each batch.

Lightning's ``RichProgressBar`` updates its task, gathers the progress-bar metrics and asks for a redraw after every
training batch: 40 to 60 µs of Python a step in a terminal (2 CPU cores, 2026-12-05), more than the rest of the
template's callbacks together, while rich redraws only ``refresh_rate`` times a second anyway.
"""

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar


class PacedRichProgressBar(RichProgressBar):
    """``RichProgressBar`` updated at most ``updates_per_second`` times a second while training, and always after
    an epoch's first and last batches and before a validation or the end of training shows the count; validation and
    testing are drawn as Lightning draws them."""

    def __init__(self, updates_per_second: float = 10.0, **kwargs: Any) -> None:
        if not updates_per_second > 0:  # nan too
            raise ValueError(f"updates_per_second must be > 0, got {updates_per_second}")
        super().__init__(**kwargs)
        self.interval = 1.0 / updates_per_second
        self.last_update = -float("inf")
        self.skipped: int | None = None  # the latest batch not shown

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        self.last_update, self.skipped = -float("inf"), None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.monotonic()
        if now - self.last_update >= self.interval or batch_idx + 1 >= self.total_train_batches:
            self.last_update, self.skipped = now, None
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        else:
            self.skipped = batch_idx

    def _show_skipped(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.skipped is not None:  # the bar reads only the batch index of these arguments
            batch_idx, self.skipped = self.skipped, None
            super().on_train_batch_end(trainer, pl_module, None, None, batch_idx)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._show_skipped(trainer, pl_module)
        super().on_validation_start(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._show_skipped(trainer, pl_module)
        super().on_train_end(trainer, pl_module)
