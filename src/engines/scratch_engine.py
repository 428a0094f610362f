"""Run the hand-written loop from the same config the Lightning engine reads (``engine=scratch``)."""

import logging
import math
from pathlib import Path

from hydra.utils import instantiate
from lightning import LightningDataModule
from omegaconf import DictConfig
from torch import nn

from src.engines.checkpoints import load_net_weights
from src.engines.distributed import init_distributed
from src.engines.interrupt import StopRequest
from src.engines.result import FitResult
from src.engines.scratch_loop import LoopSettings, ScratchTrainer
from src.sweeps.trial import trial_reporter
from src.utils import builders
from src.utils.checks import uses_cuda
from src.utils.figures import publish_confusion_matrix
from src.utils.hparams import log_run_hyperparameters

log = logging.getLogger(__name__)


def batch_limit(value: float | int | None, batches: int) -> int | None:
    """Lightning's ``limit_*_batches`` meaning: an int is a count, a float a fraction of the epoch."""
    if value is None:
        return None
    return int(value) if isinstance(value, int) else max(1, math.ceil(float(value) * batches))


CHECKPOINT_CALLBACKS = ("model_checkpoint", "last_checkpoint", "save_on_interrupt")


def last_every_n_epochs(last_checkpoint: DictConfig | None) -> int:
    """ModelCheckpoint's ``every_n_epochs`` of ``callbacks.last_checkpoint``: unset is 1, 0 is never; no callback is
    never."""
    if not last_checkpoint:
        return 0
    every = last_checkpoint.get("every_n_epochs")
    return 1 if every is None else int(every)


def settings_from_config(cfg: DictConfig, train_batches: int) -> LoopSettings:
    trainer, callbacks = cfg.trainer, cfg.get("callbacks") or {}
    early, last = callbacks.get("early_stopping"), callbacks.get("last_checkpoint")
    fast_dev_run = bool(trainer.get("fast_dev_run"))
    return LoopSettings(
        max_epochs=1 if fast_dev_run else trainer.max_epochs,
        precision=str(trainer.precision),
        gradient_clip_val=trainer.get("gradient_clip_val"),
        accumulate_grad_batches=trainer.get("accumulate_grad_batches") or 1,
        monitor=cfg.monitor,
        mode=cfg.monitor_mode,
        patience=early.patience if early else None,
        min_delta=early.min_delta if early else 0.0,
        checkpoint_dir=None
        if fast_dev_run or not any(callbacks.get(name) for name in CHECKPOINT_CALLBACKS)
        else Path(cfg.paths.output_dir) / "checkpoints",
        save_best=bool(callbacks.get("model_checkpoint")),
        last_every_n_epochs=last_every_n_epochs(last),
        save_on_interrupt=bool(callbacks.get("save_on_interrupt")),
        progress_bar=bool(callbacks.get("progress_bar")) and trainer.get("enable_progress_bar", True),
        limit_train_batches=1 if fast_dev_run else batch_limit(trainer.get("limit_train_batches"), train_batches),
        limit_eval_batches=1 if fast_dev_run else None,
        val_every_n_epochs=1 if fast_dev_run else trainer.get("check_val_every_n_epoch") or 1,
        test_time_flip=cfg.module.test_time_flip,
        test_time_shift=cfg.module.test_time_shift,
        stop_on_non_finite=bool(callbacks.get("stop_on_non_finite")),
    )


def fit_from_scratch(cfg: DictConfig, datamodule: LightningDataModule, net: nn.Module, stop: StopRequest) -> FitResult:
    device, rank, world_size = init_distributed(uses_cuda(str(cfg.trainer.accelerator)))
    datamodule.place(device, rank, world_size)
    datamodule.prepare_data()
    datamodule.setup("fit")
    train_loader, val_loader = datamodule.train_dataloader(), datamodule.val_dataloader()
    settings = settings_from_config(cfg, len(train_loader))
    loggers = [] if cfg.trainer.get("fast_dev_run") else builders.build_loggers(cfg)
    reporter = trial_reporter(cfg.optimized_metric) if world_size == 1 else None  # one trial, one reporter
    loop = ScratchTrainer(settings, device, loggers, rank, world_size, reporter.report if reporter else None)
    objective = builders.build_objective(cfg.module)
    scheduler = instantiate(cfg.scheduler, _convert_="all") if cfg.scheduler else None
    resume = load_net_weights(cfg.ckpt_path, net) if cfg.ckpt_path else None

    status = "failed"
    try:
        metrics = loop.fit(
            net, objective, instantiate(cfg.optimizer), scheduler, train_loader, val_loader, stop, resume
        )
        if cfg.test:
            tested, matrix = loop.test(net, objective, datamodule.test_dataloader())
            metrics |= tested
            if matrix is not None and cfg.plots and rank == 0 and not cfg.trainer.get("fast_dev_run"):
                publish_confusion_matrix(matrix, cfg.paths.output_dir, loggers, loop.global_step)
        log_run_hyperparameters(loggers, cfg, metrics, loop.global_step)
        status = "success"
    finally:
        loop.finish(status)
    return FitResult(
        metrics=metrics,
        epochs=loop.epoch,
        global_step=loop.global_step,
        best_checkpoint=str(loop.tested_checkpoint) if loop.tested_checkpoint else None,
        best_score=loop.best_score if settings.save_best else None,  # as Lightning: no monitored checkpoint, no best
    )
