"""Build the configured learning-rate scheduler for an optimizer; shared by the Lightning and scratch engines."""

import inspect
from typing import Any

from torch.optim import Optimizer


def build_scheduler(config: dict[str, Any], optimizer: Optimizer, total_steps: int) -> dict[str, Any]:
    """Lightning's lr-scheduler dict with ``scheduler`` built; schedulers sized in optimizer steps (OneCycleLR)
    get ``total_steps`` when the config leaves it null."""
    build = config["scheduler"]
    extra = {}
    if "total_steps" in inspect.signature(build.func).parameters and build.keywords.get("total_steps") is None:
        extra["total_steps"] = total_steps
    return {**config, "scheduler": build(optimizer, **extra)}
