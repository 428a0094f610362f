"""Facts of the running process that configs depend on: a CUDA GPU or not, one run or a sweep."""

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode


def uses_cuda(accelerator: str) -> bool:
    """Whether ``trainer.accelerator`` puts the run on a CUDA GPU."""
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def in_sweep() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
