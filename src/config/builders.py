"""Instantiate the objects of one run from its config, turning misfits into messages a user can act on."""

import logging
import os
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning import Callback, LightningDataModule
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, ModelSummary, ProgressBar
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.config.continued_history import (
    WANDB_LOGGER,
    continue_logged,
    continuing_arguments,
    copy_history_files,
    history_to_continue,
)
from src.errors import ConfigError
from src.models.shapes import ShapeError
from src.training.loss_and_metrics import LossAndMetrics, task_loss_and_metrics

log = logging.getLogger(__name__)


def _choice(group: str, cfg: DictConfig) -> str:
    """The option the user picked for a group (``model=cnn``), or the target class outside Hydra."""
    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get(group)
        if choice:
            return str(choice)
    return str(cfg[group].get("_target_", "?")).rsplit(".", 1)[-1]


RUNTIME_OPTIONS = ("compile", "channels_last")  # how to run the network, not arguments of its class
# torch.compile's modes; reduce-overhead replays each step's kernels as CUDA graphs (for launch-bound steps).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def instantiate_network(model_cfg: DictConfig) -> nn.Module:
    """The plain network of a model config (its runtime options left out), as eval and export rebuild it."""
    resolved = OmegaConf.to_container(model_cfg, resolve=True)
    return instantiate({k: v for k, v in resolved.items() if k not in RUNTIME_OPTIONS})


def to_channels_last(module: nn.Module, args: tuple) -> tuple:
    return (args[0].contiguous(memory_format=torch.channels_last), *args[1:])


def build_model(cfg: DictConfig) -> nn.Module:
    """Build ``cfg.model``; a model that cannot take the data's shape names the pair and what would fit.
    ``model.channels_last`` stores weights and inputs NHWC (faster convolutions on tensor cores);
    ``model.compile`` (true or a torch.compile mode) compiles the forward pass in place (``nn.Module.compile``), so
    checkpoints keep their keys."""
    try:
        net = instantiate_network(cfg.model)
    except InstantiationException as err:
        if isinstance(err.__cause__, ShapeError):
            pair = f"model={_choice('model', cfg)} does not fit data={_choice('data', cfg)}"
            raise ConfigError(f"{pair}: {err.__cause__}") from None
        raise
    if cfg.model.get("channels_last"):
        if len(cfg.data.input_shape) != 3:
            raise ConfigError(
                f"model.channels_last=true needs image input, not input_shape {list(cfg.data.input_shape)}"
            )
        net = net.to(memory_format=torch.channels_last)
        net.register_forward_pre_hook(to_channels_last)
    compile_mode = cfg.model.get("compile")
    if compile_mode:
        if compile_mode is not True and compile_mode not in COMPILE_MODES:
            raise ConfigError(f"model.compile={compile_mode} is not a mode; use false, true or one of {COMPILE_MODES}")
        net.compile(mode=None if compile_mode is True else compile_mode)
    return net


def build_datamodule(cfg: DictConfig) -> LightningDataModule:
    """A value the data module refuses (``data.val_size=-1``, ``data.loader=pil``) is one line naming it."""
    try:
        return instantiate(cfg.data)
    except InstantiationException as err:
        if isinstance(err.__cause__, ValueError):
            raise ConfigError(f"data: {err.__cause__}") from None
        raise


def set_up_data(datamodule: LightningDataModule) -> None:
    """Build the splits before anything else, so data that cannot be split as configured (an empty split, a
    validation set as large as the data) is one line now; inside Lightning's fit it would end in a traceback."""
    try:
        datamodule.setup("fit")
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(f"data: {err}") from None


def init_from_data(net: nn.Module, datamodule: LightningDataModule) -> None:
    """Networks whose first weights depend on the data (``model.whiten_stem=true``) declare how many training
    inputs they want in ``data_init_samples`` and take them in ``init_from_data``; others are left alone."""
    samples = getattr(net, "data_init_samples", 0)
    if samples:
        net.init_from_data(datamodule.training_inputs(samples))


def build_loss_and_metrics(module_cfg: DictConfig) -> LossAndMetrics:
    """Loss, metrics and prediction transform of ``cfg.module``, its ``loss`` and ``metrics`` nodes built as Hydra
    builds them for the Lightning module: the scratch engine and the start-up checks read the same objects."""
    loss = module_cfg.loss
    nodes = module_cfg.get("metrics") or {}  # runs saved before metrics were configurable have none
    if not isinstance(nodes, DictConfig | dict):
        raise ConfigError(
            f"module.metrics={nodes!r} is not a node of metric names; add one with "
            "+module.metrics.<name>._target_=<module>.<Class>, or drop a default with +module.metrics.<name>=null"
        )
    try:
        metrics = {
            str(name): None if node is None else _built(f"module.metrics.{name}", node) for name, node in nodes.items()
        }
        built_loss = _built("module.loss", loss) if isinstance(loss, DictConfig) else loss
        return task_loss_and_metrics(
            module_cfg.task, module_cfg.num_outputs, built_loss, module_cfg.label_smoothing, metrics
        )
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _built(key: str, node: object) -> object:
    if not isinstance(node, DictConfig) or "_target_" not in node:
        raise ConfigError(f"{key}={node} is not a node with a _target_; e.g. +{key}._target_=<module>.<Class>")
    try:
        return instantiate(node)
    except InstantiationException as err:
        raise ConfigError(f"{key}: {err.__cause__ or err}") from None


def build_loggers(cfg: DictConfig, resume_from: str | None = None) -> list[Logger]:
    """The configured loggers; resumed from another run's checkpoint, they continue that run's history
    (``src/config/continued_history.py``)."""
    nodes = [node for node in (cfg.get("logger") or {}).values() if node]
    history = history_to_continue(resume_from, cfg.paths.output_dir, cfg.engine)
    loggers = []
    for node in nodes:
        target = node.get("_target_")
        if target == WANDB_LOGGER and node.get("save_dir"):
            keep_wandb_in(Path(node.save_dir) / "wandb")
        if history is not None:
            copy_history_files(target, node, history)
        loggers.append(instantiate(node, **(continuing_arguments(target, node, history) if history else {})))
    if history is not None:
        continue_logged(loggers, history)
    return loggers


def keep_wandb_in(folder: Path) -> None:
    """W&B keeps its logs, cache and settings under ~/.cache and ~/.config and prints a page per run: here they go
    into the run's own folder, and its console is quiet (the run says where it wrote; ``wandb sync`` uploads)."""
    try:
        import wandb  # the W&B extra: only runs that log to it get here
    except ImportError:
        raise ConfigError('logger=wandb needs the W&B extra: pip install -e ".[wandb]"') from None

    if wandb.run is not None:  # left by a run stopped in this process: Lightning's logger would log into it
        wandb.run.finish(exit_code=1)
    wandb.teardown()  # its background service outlives a run and keeps the folders it started with
    for variable, name in (("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config"), ("WANDB_DATA_DIR", "data")):
        os.environ[variable] = str(folder / name)
    os.environ["WANDB_SILENT"] = "true"


# The Trainer's switches that Lightning refuses to combine with a callback of their kind in the list: turned off,
# they drop those callbacks instead (trainer.enable_progress_bar=false runs without callbacks.progress_bar).
SWITCHED_CALLBACKS = {
    "enable_progress_bar": ProgressBar,
    "enable_checkpointing": ModelCheckpoint,
    "enable_model_summary": ModelSummary,
}


def build_callbacks(cfg: DictConfig, has_logger: bool) -> list[Callback]:
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    dropped = tuple(kind for switch, kind in SWITCHED_CALLBACKS.items() if cfg.trainer.get(switch) is False)
    if not has_logger:
        # LearningRateMonitor refuses to run without a logger; with logger=none there is nothing to monitor into.
        dropped += (LearningRateMonitor,)
    return [c for c in callbacks if not isinstance(c, dropped)]
