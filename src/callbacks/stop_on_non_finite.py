"""Stop at the first non-finite loss or gradient, naming the step and the likely causes.

Lightning's ``EarlyStopping(check_finite=True)`` only looks at validation time, after a whole epoch on NaN weights.
"""

from collections.abc import Iterable

import lightning as L
import torch
from torch import nn
from torch.optim import Optimizer

from src.errors import DivergedError


def diverged_message(what: str, value: float, step: int, epoch: int, lr: float, precision: str) -> str:
    other = (
        f"float16 overflow (trainer.precision={precision}: try bf16-mixed or 32-true)"
        if precision.startswith("16")
        else "NaN or infinite values in the input data"
    )
    return (
        f"{what} is {value} at step {step} (epoch {epoch}); stopping instead of training on it. "
        f"Likely causes: a learning rate too high (it is {lr:g}: try a smaller optimizer.lr), or {other}. "
        "The last checkpoint written before this step is intact."
    )


def find_non_finite(
    loss: torch.Tensor, named_parameters: Iterable[tuple[str, nn.Parameter]], precision: str
) -> tuple[str, float] | None:
    """``("train/loss", value)`` or ``("the gradient of <name>", norm)`` for the first non-finite one, or None,
    at the cost of one host sync per step. float16 training skips steps with overflowing gradients by design (the
    loss scaler), so there only the loss is checked."""
    grads = [] if precision.startswith("16") else [(n, p.grad) for n, p in named_parameters if p.grad is not None]
    values = torch.stack([loss.detach().float().reshape(()), *(torch.linalg.vector_norm(g.float()) for _, g in grads)])
    finite = torch.isfinite(values)
    if bool(finite.all()):
        return None
    index = int((~finite).nonzero()[0])
    return ("train/loss" if index == 0 else f"the gradient of {grads[index - 1][0]}"), values[index].item()


class StopOnNonFinite(L.Callback):
    """Raise :class:`DivergedError` before an optimizer step on a NaN or infinite loss or gradient."""

    def __init__(self) -> None:
        self.loss: torch.Tensor | None = None

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        self.loss = loss  # checked with the gradients, in one sync

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Optimizer) -> None:
        if self.loss is None:
            return
        found = find_non_finite(self.loss, pl_module.named_parameters(), str(trainer.precision))
        if found is not None:
            lr = optimizer.param_groups[0]["lr"]
            what, value = found
            raise DivergedError(
                diverged_message(what, value, trainer.global_step, trainer.current_epoch, lr, str(trainer.precision))
            )
