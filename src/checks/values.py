"""Single values the other checks do not cover: files named, modes, test-time views, the optimizer, keys added
with ``+``."""

import difflib
import logging
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from src.checks.loop_limits import validates_nothing
from src.checks.suggest import config_keys
from src.errors import ConfigError, one_line

log = logging.getLogger(__name__)


MATMUL_PRECISIONS = ("highest", "high", "medium")  # torch.set_float32_matmul_precision's
RESUME_MODES = ("auto", "never")  # resume=...; unset: auto for sweep jobs only (src/runs/resume.py)


def check_test_time_augmentation(cfg: DictConfig) -> None:
    """Flipped and shifted views need image data; mirroring images never mirrored in training is allowed, with a
    warning."""
    flip, shift = cfg.module.get("test_time_flip", False), cfg.module.get("test_time_shift", 0)  # older runs lack them
    if not flip and not shift:
        return
    setting = f"module.test_time_flip={str(flip).lower()} module.test_time_shift={shift}"
    shape = list(cfg.data.input_shape)
    if len(shape) != 3:
        raise ConfigError(
            f"{setting} averages the outputs over flipped or shifted views of each image, so it needs image input "
            f"(channels, height, width), not input_shape {shape}; set module.test_time_flip=false "
            "module.test_time_shift=0"
        )
    if shift >= min(shape[1:]):
        raise ConfigError(
            f"module.test_time_shift={shift} is not smaller than the {shape[1]}x{shape[2]} images; use 1 or 2 pixels"
        )
    if flip and not (cfg.data.get("augment") or {}).get("flip"):
        log.warning(
            "module.test_time_flip=true but data.augment.flip is off: the network never sees mirror images in "
            "training, and averaging in its outputs for them likely lowers accuracy"
        )


def check_optimizer(optimizer: DictConfig) -> None:
    """The optimizer built once on a stand-in parameter: a value it refuses (``optimizer.betas=[0.9]``) is one line
    now, not a traceback when Lightning builds it at the start of fitting."""
    try:
        instantiate(optimizer)([nn.Parameter(torch.zeros(1))])
    except (ValueError, TypeError, IndexError, KeyError, RuntimeError) as err:
        target = str(optimizer.get("_target_"))
        raise ConfigError(f"optimizer: {target} refuses these settings ({one_line(err)}); check optimizer.*") from None


def check_added_keys(cfg: DictConfig) -> None:
    """``+max_epochs=1`` or ``+optimzer.lr=1`` adds a top-level key nothing reads, and the run would train on the
    defaults: when the name is that of a deeper key, or close to a real top-level one, that key was meant. (An
    added key that resembles nothing, such as ``+tags=[a]``, is the user's own and stays.)"""
    if not HydraConfig.initialized():
        return
    added = [o for o in HydraConfig.get().overrides.task if o.startswith("+") and not o.startswith("++")]
    added_keys = [o.lstrip("+").split("=", 1)[0] for o in added]

    def only_added(top: str) -> bool:  # the whole top-level node comes from + overrides
        node = cfg.get(top)
        children = [f"{top}.{key}" for key in node] if isinstance(node, DictConfig) else [top]
        return all(any(k == child or k.startswith(f"{child}.") for k in added_keys) for child in children)

    keys = list(config_keys(cfg))
    nested = {path.rsplit(".", 1)[-1]: path for path in keys if "." in path}
    tops = [path for path in keys if "." not in path and not only_added(path)]
    for override in added:
        key, _, value = override.lstrip("+").partition("=")
        top, _, rest = key.partition(".")
        if top in tops:
            continue
        meant = nested.get(key) if not rest else next(iter(difflib.get_close_matches(top, tops, n=1)), None)
        if meant is not None:
            meant = meant if not rest else f"{meant}.{rest}"
            raise ConfigError(
                f"{override} adds a top-level key {top!r} that nothing reads; did you mean {meant}={value}?"
            )


def check_values(cfg: DictConfig) -> None:
    """The files named, the modes, and a plateau schedule that needs a validation every epoch."""
    for key in ("ckpt_path", "init_weights"):
        if cfg.get(key) and not Path(cfg[key]).is_file():
            raise ConfigError(f"{key}={cfg[key]} is not a file; point it at a run's checkpoints/last.ckpt")
    if cfg.float32_matmul_precision not in MATMUL_PRECISIONS:
        raise ConfigError(
            f"float32_matmul_precision={cfg.float32_matmul_precision!r} is not one; choose one of {MATMUL_PRECISIONS}"
        )
    if cfg.get("resume") not in (None, *RESUME_MODES):
        raise ConfigError(f"resume={cfg.resume!r} is not a resume mode; choose auto, never or null (sweeps only)")
    if cfg.monitor_mode not in ("min", "max"):
        raise ConfigError(f"monitor_mode must be 'min' or 'max', got {cfg.monitor_mode!r}")
    every = cfg.trainer.get("check_val_every_n_epoch", 1)  # null: every val_check_interval steps, across epochs
    if (cfg.get("scheduler") or {}).get("monitor") and every != 1 and not validates_nothing(cfg):
        cadence = "by steps, not epochs" if every is None else f"every {every} epochs"
        raise ConfigError(
            f"the scheduler steps on scheduler.monitor={cfg.scheduler.monitor} every epoch, but "
            f"trainer.check_val_every_n_epoch={every} validates {cadence}; set it to 1 or pick a scheduler "
            "that needs no metric (step, cosine, onecycle)"
        )
