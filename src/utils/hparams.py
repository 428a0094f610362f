"""What TensorBoard's HParams dashboard compares across the jobs of a sweep: each run's settings and its results.

Lightning logs the LightningModule's own arguments only; the settings a sweep varies live in the other config
groups, so every run logs them here, once, with its final metrics, in both engines.
"""

from typing import Any

from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger
from omegaconf import DictConfig, OmegaConf

GROUPS = ("experiment", "data", "model", "optimizer", "scheduler", "trainer", "callbacks", "logger")
FLATTENED = ("data", "model", "optimizer", "scheduler")


def _flatten(values: Any, prefix: str) -> dict[str, Any]:
    if isinstance(values, dict):
        return {k: v for key, value in values.items() for k, v in _flatten(value, f"{prefix}.{key}").items()}
    if isinstance(values, bool | int | float | str):
        return {prefix: values}
    return {prefix: str(values)}  # lists and None: HParams takes numbers, strings and booleans only


def run_hyperparameters(cfg: DictConfig) -> dict[str, Any]:
    """The chosen option of each config group, the flattened values of data, model, optimizer and scheduler, and
    the precision, seed and engine."""
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    params: dict[str, Any] = {f"option/{group}": str(choices.get(group)) for group in GROUPS if group in choices}
    for section in FLATTENED:
        params |= _flatten(OmegaConf.to_container(cfg[section], resolve=True) if cfg.get(section) else None, section)
    params |= {"trainer.precision": str(cfg.trainer.precision), "seed": cfg.seed, "engine": cfg.engine}
    return params


def log_run_hyperparameters(loggers: list[Logger], cfg: DictConfig, metrics: dict[str, float], step: int) -> None:
    """Log the run's settings with its final metrics, then close the trackers that hold one run per process (W&B,
    whose run would otherwise stay open for the next ``train`` call in this process and write no summary, and whose
    service flushes the run's log only when it stops)."""
    params = run_hyperparameters(cfg)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params, metrics=metrics, step=step)  # the metrics become the dashboard's columns
        else:
            logger.log_hyperparams(params)
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(metrics)
            logger.experiment.finish()
            import wandb  # the W&B extra, there since this run logs to it

            wandb.teardown()  # its service writes the run's log until it stops: complete when the run returns
