"""Rebuild a finished run's model and data from its own saved config, for evaluation, prediction and export."""

from pathlib import Path

from hydra.utils import instantiate
from lightning import LightningDataModule
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.engines.checkpoints import load_net_weights
from src.utils.builders import instantiate_network
from src.utils.errors import ConfigError
from src.utils.resolvers import register_resolvers


def load_run_config(ckpt_path: str | Path) -> DictConfig:
    """The resolved ``config.yaml`` train.py saved beside ``checkpoints/`` (not today's defaults, so runs made
    with experiments and overrides rebuild exactly)."""
    register_resolvers()
    ckpt = Path(ckpt_path)
    if not ckpt.is_file():
        raise ConfigError(f"ckpt_path={ckpt} is not a file; use a run's checkpoints/epoch_NNN.ckpt or last.ckpt")
    config = ckpt.resolve().parent.parent / "config.yaml"
    if not config.is_file():
        raise ConfigError(
            f"{config} not found: the checkpoint must sit in a run's checkpoints/ folder made by train.py"
        )
    return OmegaConf.load(config)


def rebuild(run_cfg: DictConfig, ckpt_path: str | Path) -> tuple[LightningDataModule, nn.Module]:
    """The run's data module and network, with the checkpoint's weights loaded."""
    net = instantiate_network(run_cfg.model)
    load_net_weights(ckpt_path, net)
    return instantiate(run_cfg.data), net.eval()
