"""Train any model on any data it fits: ``python train.py model=cnn data=mnist optimizer=adamw``.

check -> seed -> instantiate -> fit -> test the best checkpoint -> record -> return the optimized metric.
"""

import logging
from pathlib import Path

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src.utils import builders
from src.utils.checks import check_config
from src.utils.console import print_config, print_metrics
from src.utils.errors import ConfigError, RunError
from src.utils.resolvers import register_resolvers
from src.utils.run_record import recorded_run

register_resolvers()
log = logging.getLogger(__name__)


def _optimized_value(cfg: DictConfig, trainer: L.Trainer, metrics: dict[str, float]) -> float:
    """The best value when the metric is the monitored one (what the checkpoint kept), else its logged value."""
    name = cfg.optimized_metric
    checkpoint = trainer.checkpoint_callback
    if checkpoint is not None and checkpoint.monitor == name and checkpoint.best_model_score is not None:
        return float(checkpoint.best_model_score)
    if name not in metrics:
        raise ConfigError(f"optimized_metric={name!r} was never logged; logged metrics: {sorted(metrics)}")
    return metrics[name]


def train(cfg: DictConfig) -> tuple[float, dict[str, float]]:
    """Run one experiment in ``cfg.paths.output_dir``; return the optimized metric and every final metric."""
    output_dir = Path(cfg.paths.output_dir)
    with recorded_run(output_dir) as record:
        check_config(cfg)
        OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)
        L.seed_everything(cfg.seed, workers=True)

        datamodule = builders.build_datamodule(cfg)
        scheduler = instantiate(cfg.scheduler, _convert_="all") if cfg.scheduler else None
        module = instantiate(
            cfg.module, net=builders.build_model(cfg), optimizer=instantiate(cfg.optimizer), scheduler=scheduler
        )
        loggers = builders.build_loggers(cfg)
        callbacks = builders.build_callbacks(cfg, has_logger=bool(loggers))
        trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if cfg.test:
            log.info("Testing %s", best or "the final weights (no checkpoint was saved)")
            metrics.update(trainer.test(module, datamodule=datamodule, ckpt_path=best or None)[0])

        value = _optimized_value(cfg, trainer, metrics)
        record.update(
            optimized_metric={"name": cfg.optimized_metric, "value": value},
            metrics=metrics,
            epochs=trainer.current_epoch,
            global_step=trainer.global_step,
            best_checkpoint=best or None,
        )
    return value, metrics


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    if cfg.print_config:
        print_config(cfg)
    try:
        value, metrics = train(cfg)
    except Exception as err:
        if _in_multirun():
            # One failed job must not end the sweep: it is recorded as failed and reported with the others.
            log.error("Job failed: %s: %s", type(err).__name__, err)
            return float("nan")
        if isinstance(err, RunError | InstantiationException):
            log.error("%s", err)
            raise SystemExit(1) from None
        raise
    print_metrics(metrics, title=f"{cfg.optimized_metric} = {value:.6g}", caption=str(cfg.paths.output_dir))
    return value


if __name__ == "__main__":
    main()
