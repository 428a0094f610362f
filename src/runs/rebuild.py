"""Rebuild a finished run's model and data from its own saved config, for evaluation, prediction and export."""

from pathlib import Path

import yaml
from hydra.errors import InstantiationException
from lightning import LightningDataModule
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch import nn

from src.checks.command_line import usage
from src.checks.schema import check_schema
from src.config.builders import build_datamodule, instantiate_network, set_up_data
from src.config.resolvers import register_resolvers
from src.datamodules.readers import DataFileError
from src.errors import ConfigError, one_line
from src.stop_and_resume.checkpoints import load_net_weights

# What eval.py and export.py read of a run's config to rebuild it.
RUN_KEYS = ("model._target_", "data._target_", "data.task", "data.input_shape", "data.num_outputs", "module._target_")
# What a run's module and data must agree on: train.py's config sets the first from the second.
SHARED_WITH_DATA = ("task", "num_outputs")


def required_checkpoint(cfg: DictConfig, script: str) -> str:
    """``ckpt_path``, which eval.py and export.py cannot do without: a usage line when it is not given."""
    if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.ckpt_path:
        raise ConfigError(usage(script))
    return str(cfg.ckpt_path)


def run_config_path(ckpt_path: str | Path) -> Path:
    """Where train.py wrote the config of the run a checkpoint belongs to: beside its ``checkpoints/`` folder."""
    return Path(ckpt_path).resolve().parent.parent / "config.yaml"


def load_run_config(ckpt_path: str | Path) -> DictConfig:
    """The resolved ``config.yaml`` train.py saved beside ``checkpoints/`` (not today's defaults, so runs made
    with experiments and overrides rebuild exactly), checked with the schema train.py uses: a key deleted or
    edited by hand is one line naming it and the file."""
    register_resolvers()
    ckpt = Path(ckpt_path)
    if not ckpt.is_file():
        raise ConfigError(f"ckpt_path={ckpt} is not a file; use a run's checkpoints/epoch_NNN.ckpt or last.ckpt")
    config = run_config_path(ckpt)
    if not config.is_file():
        raise ConfigError(
            f"{config} not found: the checkpoint must sit in a run's checkpoints/ folder made by train.py"
        )
    try:
        run_cfg = OmegaConf.load(config)
        for key in RUN_KEYS:
            if OmegaConf.select(run_cfg, key, default=None) is None:
                raise ConfigError(f"{key} is missing")
        check_schema(run_cfg)
    except (ConfigError, OmegaConfBaseException, yaml.YAMLError) as err:
        raise edited_config_error(config, err) from None
    return run_cfg


def edited_config_error(config: Path, err: Exception | str) -> ConfigError:
    """One line for a run's config that no longer builds: what is wrong, in which file."""
    if isinstance(err, InstantiationException):  # Hydra's lines: the target, then its own error
        message = one_line(err)
    else:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
    return ConfigError(f"{config}: {message}; it should be the config.yaml train.py wrote for this run")


def rebuild(run_cfg: DictConfig, ckpt_path: str | Path) -> tuple[LightningDataModule, nn.Module]:
    """The run's data module, set up, and its network with the checkpoint's weights loaded. Values the schema lets
    through but the model or data refuses (a hand-edited ``val_size: -1``, a deleted key) are one line naming the
    file, like any other edit of it; data that does not fit it (another ``data_dir=``) names both."""
    config = run_config_path(ckpt_path)
    for key in SHARED_WITH_DATA:
        if key in run_cfg.module and run_cfg.module[key] != run_cfg.data[key]:
            found = f"module.{key}={run_cfg.module[key]} but data.{key}={run_cfg.data[key]}"
            raise edited_config_error(config, f"{found}: train.py sets the module's from the data's")
    try:
        net = instantiate_network(run_cfg.model)
        datamodule = build_datamodule(run_cfg)
    except (ConfigError, InstantiationException) as err:
        raise edited_config_error(config, err) from None
    try:
        load_net_weights(ckpt_path, net)
    except ConfigError as err:
        raise ConfigError(f"{err}; or {config} was edited and no longer describes the model it trained") from None
    try:
        set_up_data(datamodule)
    except DataFileError as err:
        raise DataFileError(f"{err} (eval.py and export.py take data_dir=/path/to/data)") from None
    except ConfigError as err:
        raise ConfigError(
            f"{err}; the data in {run_cfg.data.data_dir} does not fit {config} (data from another data_dir=, or an "
            "edit of that file)"
        ) from None
    return datamodule, net.eval()
