"""Lookahead weights with airbench's schedule: every ``every_n_steps`` steps the slow copy moves toward the trained
weights and the trained weights jump back onto it; the last step leaves the slow copy in the network.

Lightning's ``EMAWeightAveraging`` keeps an average beside the weights with a constant decay; this resets the
trained weights to the average and ramps the decay from 0 to ``final_decay`` (cubically), which is what short
one-cycle runs gain from (Zhang et al. 2019, "Lookahead Optimizer"; Jordan 2024, airbench94).
"""

from typing import Any

import lightning as L
import torch
from torchmetrics import Metric


class Lookahead(L.Callback):
    def __init__(self, every_n_steps: int = 5, final_decay: float = 0.95**5) -> None:
        if every_n_steps < 1 or not 0.0 <= final_decay < 1.0:
            raise ValueError(
                f"lookahead: every_n_steps must be >= 1 and final_decay in [0, 1); got every_n_steps={every_n_steps}, "
                f"final_decay={final_decay}"
            )
        self.every_n_steps = every_n_steps
        self.final_decay = final_decay
        self.slow: dict[str, torch.Tensor] = {}
        self.total_steps = 1
        self.live: dict[str, torch.Tensor] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # read once: Lightning computes it by building the training loader again
        self.total_steps = max(int(trainer.estimated_stepping_batches), 1)
        # The floating-point weights and BatchNorm statistics (step counters are left alone; so are the metrics'
        # running sums, which a module saves too), collected once: the state dict's tensors share the module's
        # storage, so updating them updates the network.
        measuring = tuple(f"{name}." for name, module in pl_module.named_modules() if isinstance(module, Metric))
        self.live = {
            name: value
            for name, value in pl_module.state_dict().items()
            if value.is_floating_point() and not name.startswith(measuring)
        }
        if self.slow:  # resumed: the checkpoint's copy, on the module's device
            self.slow = {name: self.slow[name].to(value) for name, value in self.live.items()}
        else:
            self.slow = {name: value.detach().clone() for name, value in self.live.items()}

    @torch.no_grad()
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step, total = trainer.global_step, self.total_steps
        if step >= total:
            decay = 1.0  # the last step: the network takes the slow weights for validation, testing and the checkpoint
        elif step % self.every_n_steps == 0:
            decay = self.final_decay * (step / total) ** 3
        else:
            return
        live, slow = list(self.live.values()), [self.slow[name] for name in self.live]
        torch._foreach_lerp_(slow, live, 1.0 - decay)  # two kernels for all tensors, not two per tensor
        torch._foreach_copy_(live, slow)

    def state_dict(self) -> dict[str, Any]:
        return {"slow": {name: value.cpu() for name, value in self.slow.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.slow = dict(state_dict["slow"])
