"""Stop at the first non-finite loss or gradient, naming the step and the likely causes.

Lightning's ``EarlyStopping(check_finite=True)`` only looks at validation time, after a whole epoch on NaN weights.
"""

import math
from collections.abc import Iterable, Mapping
from typing import Any

import lightning as L
import torch
from torch import nn

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


STACK_EVERY = 32  # steps whose values are gathered into one tensor at once


class NonFiniteWatch:
    """Each step's loss and gradient norms, kept on the device: the loss as it is and the norms from one fused
    kernel, whatever the number of parameters (one kernel a step; none for the loss alone), gathered into one tensor
    every :data:`STACK_EVERY` steps. Reading the steps observed since the last read (:meth:`first_non_finite`) is
    the one host sync, which the engines do every so many steps and at epoch ends, so a step never waits for the one
    before it. ``loss_only`` for float16 training: its loss scaler skips the steps whose gradients overflow, by
    design."""

    def __init__(self, loss_only: bool) -> None:
        self.loss_only = loss_only
        self.parameters: list[tuple[str, nn.Parameter]] = []
        self.names: list[str] = []  # what each column holds
        self.values: list[torch.Tensor] = []  # the loss and norms of the latest steps, one step after the other
        self.gathered: list[torch.Tensor] = []  # those of earlier steps, one row per step
        self.steps: list[int] = []  # the step of each row observed since the last read
        self.no_gradient: torch.Tensor | None = None  # a frozen parameter's, made once

    def observe(self, loss: torch.Tensor, named_parameters: Iterable[tuple[str, nn.Parameter]], step: int) -> None:
        if not self.names:  # the parameters trained, listed once: a fit does not change them
            self.parameters = [] if self.loss_only else [(n, p) for n, p in named_parameters if p.requires_grad]
            self.names = ["train/loss", *(f"the gradient of {name}" for name, _ in self.parameters)]
            self.no_gradient = loss.new_zeros(())
        self.values.append(loss.detach() if loss.requires_grad else loss)  # kept without its graph
        if self.parameters:
            grads = [p.grad if p.grad is not None else self.no_gradient for _, p in self.parameters]
            self.values += torch._foreach_norm(grads)
        self.steps.append(step)
        if len(self.values) >= STACK_EVERY * len(self.names):
            self._gather()

    def _gather(self) -> None:
        if self.values:
            self.gathered.append(torch.stack(self.values).view(-1, len(self.names)))
            self.values = []

    def first_non_finite(self) -> tuple[str, float, int] | None:
        """``("train/loss", value, step)``, ``("the gradient of <name>", norm, step)`` or, when none is finite,
        ``("every gradient", norm, step)`` (a NaN from upstream, or one that gradient clipping spread) of the first
        non-finite step since the last read, or None."""
        if not self.steps:
            return None
        self._gather()
        rows, steps = torch.cat(self.gathered), self.steps
        self.gathered, self.steps = [], []
        if bool(rows.isfinite().all()):  # the one host read (a sync on a GPU)
            return None
        for step, (loss, *norms) in zip(steps, rows.tolist(), strict=True):
            if not math.isfinite(loss):
                return "train/loss", loss, step
            bad = [(name, norm) for name, norm in zip(self.names[1:], norms, strict=True) if not math.isfinite(norm)]
            if len(bad) == len(norms) > 1:
                return "every gradient", bad[0][1], step
            if bad:
                name, norm = bad[0]
                return name, norm, step
        return None


class StopOnNonFinite(L.Callback):
    """Raise :class:`DivergedError` within ``check_every_n_steps`` steps of a NaN or infinite loss or gradient, or at
    the end of its epoch, naming the step; checkpoints are written after such a check, so none holds the diverged
    weights. One host read per check: 0 (epoch ends only) makes it none per step.

    Each optimizer step is observed after its batch, in one hook: the loss Lightning hands over, and the gradients,
    which stay in place until the next step zeroes them (clipped, when the trainer clips: a NaN then reaches every
    gradient, and the message says so)."""

    def __init__(self, check_every_n_steps: int = 100) -> None:
        if check_every_n_steps < 0:
            raise ValueError(f"check_every_n_steps must be >= 0, got {check_every_n_steps}")
        self.check_every_n_steps = check_every_n_steps
        self.watch: NonFiniteWatch | None = None
        self.observed_steps = 0  # the trainer's global step at the last batch observed

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.observed_steps = trainer.global_step  # a resumed fit starts where its checkpoint stopped

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        steps = trainer.global_step
        if steps == self.observed_steps:  # inside a window of accumulated batches: no optimizer step yet
            return
        self.observed_steps = steps
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor):  # Lightning's detached copy of the step's loss
            if self.watch is None:
                self.watch = NonFiniteWatch(loss_only=getattr(trainer.precision_plugin, "scaler", None) is not None)
            self.watch.observe(loss, pl_module.named_parameters(), steps - 1)
        every = self.check_every_n_steps
        if every and steps % every == 0:
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
