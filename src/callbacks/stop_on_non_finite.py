"""Stop at the first non-finite training loss, naming the step and the likely causes.

Lightning's ``EarlyStopping(check_finite=True)`` only looks at validation time, after a whole epoch on NaN weights.
"""

from collections.abc import Mapping
from typing import Any

import lightning as L
import torch

from src.utils.errors import DivergedError


def diverged_message(loss: float, step: int, epoch: int, lr: float, precision: str) -> str:
    other = (
        f"float16 overflow (trainer.precision={precision}: try bf16-mixed or 32-true)"
        if precision.startswith("16")
        else "NaN or infinite values in the input data"
    )
    return (
        f"train/loss is {loss} at step {step} (epoch {epoch}); stopping instead of training on it. "
        f"Likely causes: a learning rate too high (it is {lr:g}: try a smaller optimizer.lr), or {other}. "
        "The last checkpoint written before this step is intact."
    )


class StopOnNonFiniteLoss(L.Callback):
    """Raise :class:`DivergedError` when a training step's loss is NaN or infinite."""

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor) and not bool(torch.isfinite(loss).all()):
            lr = trainer.optimizers[0].param_groups[0]["lr"]
            message = diverged_message(loss.item(), trainer.global_step, trainer.current_epoch, lr, trainer.precision)
            raise DivergedError(message)
