"""What the hand-written loop is given: its settings, the network, optimizer and metrics a fit trains, and the
batches of its loaders."""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim import Optimizer
from torchmetrics import MetricCollection

from src.stop_and_resume.checkpoints import PREFIX, net_state
from src.training.loss_and_metrics import LossAndMetrics
from src.training.schedulers import build_scheduler


@dataclass
class LoopSettings:
    """The knobs of the loop; ``scratch_engine.settings_from_config`` reads them from the same ``trainer`` and
    ``callbacks`` config Lightning gets."""

    max_epochs: int
    min_epochs: int = 0  # early stopping waits for these
    precision: str = "32-true"
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int = 1
    monitor: str = "val/loss"
    mode: str = "min"
    patience: int | None = None  # early stopping; None = off
    min_delta: float = 0.0
    checkpoint_dir: Path | None = None  # None: no checkpoints at all
    save_best: bool = True  # keep the best epoch's checkpoint (callbacks.model_checkpoint)
    last_every_n_epochs: int = 1  # refresh last.ckpt after epochs n, 2n, ...; 0: never (callbacks.last_checkpoint)
    save_on_interrupt: bool = True  # SIGTERM or Ctrl-C: save last.ckpt before stopping (callbacks.save_on_interrupt)
    progress_bar: bool = True
    limit_train_batches: int | None = None
    limit_val_batches: int | None = None  # 0: no validation
    limit_test_batches: float | int | None = None  # as in the config: the test loader is built after fit
    val_every_n_epochs: int = 1  # Lightning's check_val_every_n_epoch: validate after epochs n, 2n, ...
    test_time_flip: bool = False  # evaluate on the mean outputs for each image and its mirror image
    test_time_shift: int = 0  # ... and for the views translated by this many pixels
    stop_on_non_finite: bool = True  # keep each step's loss on the device; read it and the weights at each check
    non_finite_every_n_steps: int = 100  # read the watch (one sync) this often and at epoch ends; 0: epoch ends only
    throughput: bool = True  # log samples/s (and FLOP utilization) each epoch (callbacks.throughput)


@dataclass
class FitState:
    """What a fit trains and measures, passed around as one object."""

    model: nn.Module  # the network, wrapped in DistributedDataParallel with several processes
    loss_and_metrics: LossAndMetrics  # loss, metrics and the outputs-to-predictions transform of the task
    optimizer: Optimizer
    schedule: dict[str, Any] | None  # Lightning's lr-scheduler dict: scheduler, interval, monitor
    train_metrics: MetricCollection
    val_metrics: MetricCollection

    @classmethod
    def on_device(
        cls,
        net: nn.Module,
        loss_and_metrics: LossAndMetrics,
        make_optimizer: Callable[[Iterable[nn.Parameter]], Optimizer],
        scheduler_config: dict[str, Any] | None,
        total_steps: int,
        device: torch.device,
        world_size: int,
    ) -> "FitState":
        """The network on the device (wrapped for DDP), its optimizer and schedule, and the metrics of a fit."""
        model = net.to(device)
        if world_size > 1:  # gradients are averaged across processes during backward
            model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        loss_and_metrics.loss.to(device)
        train_metrics = loss_and_metrics.metrics.clone(prefix="train/").to(device)
        train_metrics.persistent(True)  # saved with a mid-epoch checkpoint
        optimizer = make_optimizer(model.parameters())
        schedule = build_scheduler(scheduler_config, optimizer, total_steps) if scheduler_config else None
        val_metrics = loss_and_metrics.metrics.clone(prefix="val/").to(device)
        return cls(model, loss_and_metrics, optimizer, schedule, train_metrics, val_metrics)

    @property
    def net(self) -> nn.Module:
        """The network itself, without its DistributedDataParallel wrapper."""
        return self.model.module if isinstance(self.model, DistributedDataParallel) else self.model

    def named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """The network's parameters under the names Lightning's module gives them (``net.``), in either engine."""
        return ((PREFIX + name, parameter) for name, parameter in self.net.named_parameters())

    def state_dict(self) -> dict[str, Any]:
        """Weights, optimizer and scheduler in Lightning's checkpoint layout: either engine resumes the other's."""
        return {
            "state_dict": net_state(self.net),
            "optimizer_states": [self.optimizer.state_dict()],
            "lr_schedulers": [self.schedule["scheduler"].state_dict()] if self.schedule else [],
        }

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None:
        """The optimizer and scheduler; the weights were loaded before the network was wrapped."""
        self.optimizer.load_state_dict(checkpoint["optimizer_states"][0])
        if self.schedule and checkpoint.get("lr_schedulers"):
            self.schedule["scheduler"].load_state_dict(checkpoint["lr_schedulers"][0])


def set_epoch(loader: Iterable, epoch: int) -> None:
    """Reshuffle for this epoch: the per-epoch permutation is keyed by the epoch (what Lightning does for us)."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def num_batches(loader: Any, limit: int | None) -> int:
    return len(loader) if limit is None else min(len(loader), limit)
