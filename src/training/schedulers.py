"""Build the configured learning-rate scheduler for an optimizer; shared by the Lightning and scratch engines."""

import inspect
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau


def build_scheduler(config: dict[str, Any], optimizer: Optimizer, total_steps: int) -> dict[str, Any]:
    """Lightning's lr-scheduler dict with ``scheduler`` built; schedulers sized in optimizer steps (OneCycleLR)
    get ``total_steps`` when the config leaves it null."""
    build = config["scheduler"]
    extra = {}
    if "total_steps" in inspect.signature(build.func).parameters and build.keywords.get("total_steps") is None:
        extra["total_steps"] = total_steps
    return {**config, "scheduler": build(optimizer, **extra)}


def step_epoch_scheduler(schedule: dict[str, Any] | None, metrics: dict[str, float], monitor_measured: bool) -> None:
    """What Lightning does after each epoch, for a hand-written loop: step a schedule of ``interval: epoch``, a
    plateau schedule on its monitored metric, and only in epochs that measured it (``monitor_measured``)."""
    if schedule is None or schedule["interval"] != "epoch":
        return
    scheduler = schedule["scheduler"]
    if not isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step()
    elif monitor_measured:
        scheduler.step(metrics[schedule["monitor"]])
