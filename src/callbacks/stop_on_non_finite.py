"""Stop at the first non-finite loss or weights, naming the step and the likely causes.

Lightning's ``EarlyStopping(check_finite=True)`` only looks at validation time, after a whole epoch on NaN weights.
"""

import functools
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


STACK_EVERY = 32  # steps whose losses are gathered into one tensor at once


class NonFiniteWatch:
    """Each step's loss, kept on the device as it is (no kernel a step), gathered into one tensor every
    :data:`STACK_EVERY` steps, and the trained weights at each read. A non-finite gradient shows in the weights its
    optimizer step writes and in the loss of the next step, so reading the weights too catches a diverged update
    before a checkpoint saves it, even at the last step of an epoch; a float16 loss scaler skips such steps, and the
    weights stay finite. Reading (:meth:`first_non_finite`) is the one host sync, which the engines do every so many
    steps and at epoch ends, so a step never waits for the one before it."""

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []  # of the latest steps
        self.gathered: list[torch.Tensor] = []  # those of earlier steps, one tensor per :data:`STACK_EVERY`
        self.steps: list[int] = []  # the step of each loss observed since the last read

    def observe(self, loss: torch.Tensor, step: int) -> None:
        self.losses.append(loss.detach() if loss.requires_grad else loss)  # kept without its graph
        self.steps.append(step)
        if len(self.losses) >= STACK_EVERY:
            self._gather()

    def _gather(self) -> None:
        if self.losses:
            self.gathered.append(torch.stack(self.losses))
            self.losses = []

    def first_non_finite(self, named_parameters: Iterable[tuple[str, nn.Parameter]]) -> tuple[str, float, int] | None:
        """``("train/loss", value, step)`` for the first non-finite loss since the last read, else
        ``("the norm of <name>", norm, step)`` for the first trained weights that the latest step made non-finite,
        else None."""
        if not self.steps:
            return None
        self._gather()
        values, steps = torch.cat(self.gathered).float(), self.steps
        self.gathered, self.steps = [], []
        named = [(name, p) for name, p in named_parameters if p.requires_grad]
        if named:
            # at least float32: a float16 norm overflows at 65504 with every value finite
            dtype = functools.reduce(torch.promote_types, {p.dtype for _, p in named}, torch.float32)
            with torch.no_grad():  # one fused kernel for every tensor
                norms = torch._foreach_norm([p for _, p in named], 2, dtype=dtype)
            values = torch.cat([values, torch.stack(norms)])
        if bool(values.isfinite().all()):  # the one host read (a sync on a GPU)
            return None
        values = values.tolist()
        losses, weights = values[: len(steps)], values[len(steps) :]
        for step, loss in zip(steps, losses, strict=True):
            if not math.isfinite(loss):
                return "train/loss", loss, step
        name, norm = next((n, v) for (n, _), v in zip(named, weights, strict=True) if not math.isfinite(v))
        return f"the norm of {name}", norm, steps[-1]


class StopOnNonFinite(L.Callback):
    """Raise :class:`DivergedError` within ``check_every_n_steps`` steps of a NaN or infinite loss or weights, or at
    the end of its epoch, naming the step. Every checkpoint is preceded by such a check, so none holds the diverged
    weights (except a weights-only one, which Lightning saves without calling callbacks). One host read per check:
    0 (epoch ends and checkpoints only) makes it none per step.

    Each optimizer step is observed after its batch, in one hook: the loss Lightning hands over; the weights that
    step wrote are read with the losses."""

    def __init__(self, check_every_n_steps: int = 100) -> None:
        if check_every_n_steps < 0:
            raise ValueError(f"check_every_n_steps must be >= 0, got {check_every_n_steps}")
        self.check_every_n_steps = check_every_n_steps
        self.watch = NonFiniteWatch()
        self.observed_steps = 0  # the trainer's global step at the last batch observed

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.watch = NonFiniteWatch()
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
            self.watch.observe(loss, steps - 1)
        every = self.check_every_n_steps
        if every and steps % every == 0:
            self.stop_if_diverged(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stop_if_diverged(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stop_if_diverged(trainer)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self.stop_if_diverged(trainer)  # whoever saves, and whenever: every N steps, on a timer, on SIGTERM

    def stop_if_diverged(self, trainer: L.Trainer) -> None:
        found = self.watch.first_non_finite(trainer.lightning_module.named_parameters())
        if found is not None:
            what, value, step = found
            lr = trainer.optimizers[0].param_groups[0]["lr"]
            precision = str(trainer.precision)
            raise DivergedError(diverged_message(what, value, step, trainer.current_epoch, lr, precision))
