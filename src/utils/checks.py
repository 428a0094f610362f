"""Start-up checks of the values that would otherwise fail late or obscurely, after minutes of training."""

import logging
from collections.abc import Iterable
from pathlib import Path

import torch
from omegaconf import DictConfig

from src.utils.errors import ConfigError

log = logging.getLogger(__name__)

PRECISIONS = ("64-true", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64", "32", "16", "bf16")


def uses_cuda(accelerator: str) -> bool:
    """Whether ``trainer.accelerator`` puts the run on a CUDA GPU."""
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def check_precision(accelerator: str, precision: str) -> None:
    """Reject what the device cannot do; say what Lightning does instead where it falls back."""
    if precision not in PRECISIONS:
        raise ConfigError(f"trainer.precision={precision!r} is not a precision; choose one of {list(PRECISIONS)}")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} but no CUDA GPU is visible; use trainer=cpu or trainer.accelerator=auto"
        )
    cuda = uses_cuda(accelerator)
    if precision.startswith("16") and not cuda and accelerator != "mps":
        if precision == "16-mixed":
            log.warning("precision=16-mixed needs a CUDA GPU (float16 autocast); on the CPU this run uses bf16-mixed")
        else:
            raise ConfigError(f"trainer.precision={precision} needs a GPU; on the CPU use 32-true or bf16-mixed")
    if precision.startswith("bf16") and cuda and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"trainer.precision={precision}: this GPU has no bfloat16; use 16-mixed or 32-true")


def check_config(cfg: DictConfig, engines: Iterable[str]) -> None:
    """Validate the values every run depends on; each message names the key and a value that works."""
    if cfg.engine not in engines:
        raise ConfigError(f"engine={cfg.engine!r} is not an engine; choose one of {sorted(engines)}")
    lr = cfg.optimizer.get("lr")
    if lr is not None and not lr > 0:
        raise ConfigError(f"optimizer.lr must be > 0, got {lr}; e.g. optimizer.lr=1e-3")
    max_epochs = cfg.trainer.get("max_epochs")
    if max_epochs is not None and max_epochs < 1:
        raise ConfigError(f"trainer.max_epochs must be >= 1, got {max_epochs}")
    for key in ("batch_size", "eval_batch_size"):
        value = cfg.data.get(key)
        if value is not None and value < 1:
            raise ConfigError(f"data.{key} must be >= 1, got {value}; e.g. data.{key}=64")
    check_precision(str(cfg.trainer.get("accelerator", "auto")), str(cfg.trainer.get("precision", "32-true")))
    for key in ("ckpt_path", "init_weights"):
        if cfg.get(key) and not Path(cfg[key]).is_file():
            raise ConfigError(f"{key}={cfg[key]} is not a file; point it at a run's checkpoints/last.ckpt")
    if cfg.monitor_mode not in ("min", "max"):
        raise ConfigError(f"monitor_mode must be 'min' or 'max', got {cfg.monitor_mode!r}")
