"""Stop at the first non-finite loss or gradient, naming the step and the likely causes.

Lightning's ``EarlyStopping(check_finite=True)`` only looks at validation time, after a whole epoch on NaN weights.
"""

import math
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


class NonFiniteWatch:
    """The first step whose loss or gradients were not finite, recorded on the device without a host sync; reading
    it (:meth:`first_non_finite`) is the one sync, which the engines do every so many steps and at epoch ends, so a
    step never waits for the one before it. float16 training skips steps with overflowing gradients by design (the
    loss scaler), so there only the loss is watched."""

    def __init__(self, precision: str) -> None:
        self.loss_only = precision.startswith("16")
        self.names: list[str] = []
        self.step: torch.Tensor | None = None  # -1 while every step was finite
        self.values: torch.Tensor | None = None  # the loss and gradient norms of that step

    def observe(self, loss: torch.Tensor, named_parameters: Iterable[tuple[str, nn.Parameter]], step: int) -> None:
        named = [] if self.loss_only else list(named_parameters)
        norms = [
            torch.linalg.vector_norm(p.grad.float()) if p.grad is not None else loss.new_zeros((), dtype=torch.float)
            for _, p in named
        ]
        values = torch.stack([loss.detach().float().reshape(()), *norms])
        if self.step is None or self.values is None or self.values.shape != values.shape:
            self.names = ["train/loss", *(f"the gradient of {name}" for name, _ in named)]
            self.step = torch.full((), -1, dtype=torch.long, device=values.device)
            self.values = torch.zeros_like(values)
        first = ~torch.isfinite(values).all() & (self.step < 0)
        self.step = torch.where(first, step, self.step)
        self.values = torch.where(first, values, self.values)

    def first_non_finite(self) -> tuple[str, float, int] | None:
        """``("train/loss", value, step)`` or ``("the gradient of <name>", norm, step)`` of the first non-finite
        step observed, or None."""
        if self.step is None or self.values is None or int(self.step) < 0:
            return None
        values = self.values.tolist()
        index = next(i for i, value in enumerate(values) if not math.isfinite(value))
        return self.names[index], values[index], int(self.step)


class StopOnNonFinite(L.Callback):
    """Raise :class:`DivergedError` within ``check_every_n_steps`` steps of a NaN or infinite loss or gradient, or at
    the end of its epoch, naming the step; checkpoints are written after such a check, so none holds the diverged
    weights. One host read per check: 0 (epoch ends only) makes it none per step."""

    def __init__(self, check_every_n_steps: int = 100) -> None:
        if check_every_n_steps < 0:
            raise ValueError(f"check_every_n_steps must be >= 0, got {check_every_n_steps}")
        self.check_every_n_steps = check_every_n_steps
        self.loss: torch.Tensor | None = None
        self.watch: NonFiniteWatch | None = None

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        self.loss = loss  # watched with the gradients

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Optimizer) -> None:
        if self.loss is None:
            return
        if self.watch is None:
            self.watch = NonFiniteWatch(str(trainer.precision))
        self.watch.observe(self.loss, pl_module.named_parameters(), trainer.global_step)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        every = self.check_every_n_steps
        if every and trainer.global_step % every == 0:
            self.stop_if_diverged(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stop_if_diverged(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stop_if_diverged(trainer)

    def stop_if_diverged(self, trainer: L.Trainer) -> None:
        found = self.watch.first_non_finite() if self.watch is not None else None
        if found is not None:
            what, value, step = found
            lr = trainer.optimizers[0].param_groups[0]["lr"]
            precision = str(trainer.precision)
            raise DivergedError(diverged_message(what, value, step, trainer.current_epoch, lr, precision))
