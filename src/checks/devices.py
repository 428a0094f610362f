"""Devices and precisions this machine can run: refused in one line instead of a hang or a traceback."""

import logging
import os

import torch
from omegaconf import DictConfig

from src.config.runtime import uses_cuda
from src.errors import ConfigError

log = logging.getLogger(__name__)


PRECISIONS = ("64-true", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64", "32", "16", "bf16")


ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")  # the ones this template's environment can run


def check_devices(trainer: DictConfig) -> None:
    """Device settings that would hang or end in a traceback: an accelerator without its package (tpu), Lightning's
    spawned DDP (its processes return nothing to this one: no metrics, no record), several machines without the
    variables that tell each where the others are (it would wait forever)."""
    accelerator, strategy = str(trainer.get("accelerator", "auto")), str(trainer.get("strategy", "auto"))
    if accelerator not in ACCELERATORS:
        raise ConfigError(f"trainer.accelerator={accelerator} cannot run here; choose one of {list(ACCELERATORS)}")
    if strategy.startswith(("ddp_spawn", "ddp_notebook", "ddp_fork")):
        raise ConfigError(
            f"trainer.strategy={strategy} runs the training in processes whose results never reach this one (no "
            "metrics, no record); use trainer=ddp, which starts the processes as scripts"
        )
    nodes = trainer.get("num_nodes", 1)
    rendezvous = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK")
    missing = [name for name in rendezvous if name not in os.environ]
    launched = any(name in os.environ for name in ("SLURM_JOB_ID", "TORCHELASTIC_RUN_ID"))  # SLURM or torchrun
    if nodes != 1 and missing and not launched:
        raise ConfigError(
            f"trainer.num_nodes={nodes} without {', '.join(missing)} set: the run would wait forever for the other "
            "machines; set MASTER_ADDR, MASTER_PORT and NODE_RANK on every machine (README: several machines), "
            "or submit with hydra/launcher=slurm"
        )


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


def check_fused_clipping(cfg: DictConfig) -> None:
    """Under 16-mixed on CUDA a fused optimizer unscales its gradients inside its own step, so Lightning cannot clip
    them first and stops at the first step; refused here instead. (The scratch loop unscales, clips, then steps.)"""
    trainer = cfg.trainer
    fp16 = str(trainer.get("precision")) in ("16-mixed", "16") and uses_cuda(str(trainer.get("accelerator", "auto")))
    if cfg.engine == "lightning" and fp16 and trainer.get("gradient_clip_val") and cfg.optimizer.get("fused"):
        raise ConfigError(
            f"trainer.gradient_clip_val={trainer.gradient_clip_val} with optimizer.fused=true under 16-mixed: "
            "Lightning cannot clip gradients a fused step unscales itself; set optimizer.fused=false (the loss scaler "
            "then reads the host once per step), use trainer.precision=bf16-mixed, or engine=scratch"
        )
