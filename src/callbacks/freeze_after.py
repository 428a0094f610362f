"""Train some parameters for the first epochs only, then hold them fixed (airbench trains its whitening layer's bias
for 3 epochs). Lightning's ``BaseFinetuning`` goes the other way, unfreezing modules into new parameter groups; this
drops their gradients before each optimizer step, which then skips them: no step, no momentum, no weight decay.
Dropping the gradient rather than turning ``requires_grad`` off keeps DDP's reducer, which expects every gradient
it was built with, in step."""

from collections.abc import Sequence

import lightning as L
import torch
from torch import nn

from src.errors import ConfigError


class FreezeAfter(L.Callback):
    """``parameters``: names as ``pl_module.named_parameters()`` gives them (``net.features.0.bias``)."""

    def __init__(self, parameters: Sequence[str], epochs: int) -> None:
        if not parameters or epochs < 0:
            raise ValueError(
                f"freeze_after: needs parameter names and epochs >= 0; got parameters={list(parameters)}, "
                f"epochs={epochs}"
            )
        self.names, self.epochs = list(parameters), epochs
        self.parameters: list[nn.Parameter] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        named = dict(pl_module.named_parameters())
        if missing := [name for name in self.names if name not in named]:
            shown = ", ".join(list(named)[:8]) + (", ..." if len(named) > 8 else "")
            missing_names = ", ".join(missing)
            raise ConfigError(
                f"freeze_after: the module has no parameter {missing_names}; name some of its parameters ({shown}), or "
                "drop the callback (callbacks.<name>=null)"
            )
        self.parameters = [named[name] for name in self.names]

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        # Decided from the epoch number alone, so a resumed run freezes exactly as an uninterrupted one.
        if trainer.current_epoch >= self.epochs:
            for parameter in self.parameters:
                parameter.grad = None
