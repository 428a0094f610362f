"""Instantiate the objects of one run from its config, turning misfits into messages a user can act on."""

import logging

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning import Callback, LightningDataModule
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig
from torch import nn

from src.models.shapes import ShapeError
from src.utils.errors import ConfigError

log = logging.getLogger(__name__)


def _choice(group: str, cfg: DictConfig) -> str:
    """The option the user picked for a group (``model=cnn``), or the target class outside Hydra."""
    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get(group)
        if choice:
            return str(choice)
    return str(cfg[group].get("_target_", "?")).rsplit(".", 1)[-1]


def build_model(cfg: DictConfig) -> nn.Module:
    """Build ``cfg.model``; a model that cannot take the data's shape names the pair and what would fit."""
    try:
        return instantiate(cfg.model)
    except InstantiationException as err:
        if isinstance(err.__cause__, ShapeError):
            pair = f"model={_choice('model', cfg)} does not fit data={_choice('data', cfg)}"
            raise ConfigError(f"{pair}: {err.__cause__}") from None
        raise


def build_datamodule(cfg: DictConfig) -> LightningDataModule:
    return instantiate(cfg.data)


def build_loggers(cfg: DictConfig) -> list[Logger]:
    return [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]


def build_callbacks(cfg: DictConfig, has_logger: bool) -> list[Callback]:
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    if not has_logger:
        # LearningRateMonitor refuses to run without a logger; with logger=none there is nothing to monitor into.
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    return callbacks
