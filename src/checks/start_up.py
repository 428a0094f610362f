"""The entry points of the checks of moments 3 and 4 (this package's ``__init__`` gives the order)."""

from collections.abc import Iterable
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from src.checks.devices import check_devices, check_fused_clipping, check_precision
from src.checks.disk import check_free_space
from src.checks.loop_limits import check_batch_counts, check_loop_limits
from src.checks.metrics import check_metric_directions, check_metric_names
from src.checks.resumable import check_resumable
from src.checks.schema import check_schema
from src.checks.scratch_limits import check_scratch_settings
from src.checks.values import check_added_keys, check_optimizer, check_test_time_augmentation, check_values
from src.config.runtime import in_sweep
from src.datamodules.base import TensorDataModule
from src.errors import ConfigError
from src.sweeps.gpu_lease import lease_wanted


def check_config(cfg: DictConfig, engines: Iterable[str]) -> None:
    """Everything the composed config alone can tell."""
    check_schema(cfg)
    if cfg.engine not in engines:
        raise ConfigError(f"engine={cfg.engine!r} is not an engine; choose one of {sorted(engines)}")
    check_devices(cfg.trainer)
    check_precision(str(cfg.trainer.get("accelerator", "auto")), str(cfg.trainer.get("precision", "32-true")))
    check_test_time_augmentation(cfg)
    check_values(cfg)
    check_optimizer(cfg.optimizer)
    check_fused_clipping(cfg)
    check_metric_names(cfg)
    check_metric_directions(cfg, sweeping=in_sweep())
    check_loop_limits(cfg)
    check_added_keys(cfg)
    lease_wanted(cfg)  # a bad sweep_gpus, or one too small for trainer.devices
    if cfg.engine == "scratch":
        check_scratch_settings(cfg)


def check_built(cfg: DictConfig, datamodule: TensorDataModule, net: nn.Module, resumed_from: str | None) -> None:
    """What the set-up data and the built network tell; ``resumed_from``: the checkpoint this run continues, if
    any, which must fit the network and the configured optimizer."""
    check_batch_counts(cfg, datamodule)
    check_free_space(Path(cfg.paths.output_dir), net)
    if resumed_from:
        optimizer = instantiate(cfg.optimizer)
        check_resumable(resumed_from, net, optimizer, cfg.trainer.get("max_epochs"), cfg.engine)
