"""Train some parameters for the first epochs only, then hold them fixed (airbench trains its whitening layer's bias
for 3 epochs). Lightning's ``BaseFinetuning`` goes the other way, unfreezing modules into new parameter groups; this
only turns ``requires_grad`` off, so the optimizer skips those parameters: no gradient, no step, no weight decay."""

from collections.abc import Sequence

import lightning as L
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

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Set at every epoch from the epoch number alone, so a resumed run freezes exactly as an uninterrupted one.
        for parameter in self.parameters:
            parameter.requires_grad_(trainer.current_epoch < self.epochs)
