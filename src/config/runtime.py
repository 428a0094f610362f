"""Facts of the running process that configs depend on: a CUDA GPU or not, one run or a sweep."""

import os

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode


def uses_cuda(accelerator: str) -> bool:
    """Whether ``trainer.accelerator`` puts the run on a CUDA GPU."""
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def in_sweep() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def count_gpus_without_nvml() -> None:
    """Undo what importing Lightning sets: ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` makes ``torch.cuda.is_available()``
    load NVML on every call until CUDA is initialized, and torch's Adam and AdamW call it at every step. On a
    machine without a GPU that was 0.1 ms a step, half of a bare loop's Python (2 CPU cores, 2026-12-05). Lightning
    sets it so that forked processes can still initialize CUDA; this template starts none that do (``ddp_fork`` and
    ``ddp_notebook`` are refused at start-up)."""
    os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
