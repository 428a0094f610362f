"""Run the hand-written loop from the same config the Lightning engine reads (``engine=scratch``)."""

import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from src.config import builders
from src.config.runtime import uses_cuda
from src.datamodules.base import TensorDataModule
from src.engines.distributed import init_distributed, named_gpu, peers_watched
from src.engines.loop_inputs import FitState, LoopSettings, num_batches
from src.engines.result import FitResult
from src.engines.scratch_loop import ScratchTrainer
from src.stop_and_resume.checkpoints import load_net_weights
from src.stop_and_resume.interrupt import StopRequest
from src.sweeps.trial import trial_reporter
from src.training.batch_limits import batch_limit
from src.training.loss_and_metrics import LossAndMetrics
from src.training.throughput import peak_flops, training_flops_per_sample
from src.utils.figures import publish_confusion_matrix
from src.utils.hparams import log_run_hyperparameters

log = logging.getLogger(__name__)


CHECKPOINT_CALLBACKS = ("model_checkpoint", "last_checkpoint", "save_on_interrupt")


def last_every_n_epochs(last_checkpoint: DictConfig | None) -> int:
    """ModelCheckpoint's ``every_n_epochs`` of ``callbacks.last_checkpoint``: unset is 1, 0 is never; no callback is
    never."""
    if not last_checkpoint:
        return 0
    every = last_checkpoint.get("every_n_epochs")
    return 1 if every is None else int(every)


def settings_from_config(cfg: DictConfig, train_batches: int, val_batches: int, validates: bool) -> LoopSettings:
    """``validates``: the data holds out a validation split (decided for all ranks alike; a rank's own shard of it
    may be empty)."""
    trainer, callbacks = cfg.trainer, cfg.get("callbacks") or {}
    early, last = callbacks.get("early_stopping"), callbacks.get("last_checkpoint")
    fast_dev_run = bool(trainer.get("fast_dev_run"))
    val_limit = 1 if fast_dev_run else batch_limit(trainer.get("limit_val_batches"), val_batches)
    return LoopSettings(
        max_epochs=1 if fast_dev_run else trainer.max_epochs,
        min_epochs=trainer.get("min_epochs") or 0,
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
        limit_val_batches=val_limit if validates else 0,  # no validation split: no validation loop
        limit_test_batches=1 if fast_dev_run else trainer.get("limit_test_batches"),
        val_every_n_epochs=1 if fast_dev_run else trainer.get("check_val_every_n_epoch") or 1,
        test_time_flip=cfg.module.test_time_flip,
        test_time_shift=cfg.module.test_time_shift,
        stop_on_non_finite=bool(callbacks.get("stop_on_non_finite")),
        non_finite_every_n_steps=(callbacks.get("stop_on_non_finite") or {}).get("check_every_n_steps", 100),
        throughput=bool(callbacks.get("throughput")),
    )


def use_deterministic_algorithms(deterministic: bool | str | None, benchmark: bool | None) -> None:
    """``trainer.deterministic`` and ``trainer.benchmark`` as Lightning applies them."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what deterministic cuBLAS needs
        torch.use_deterministic_algorithms(True, warn_only=deterministic == "warn")
    if benchmark is not None:
        torch.backends.cudnn.benchmark = bool(benchmark)


def _test(
    loop: ScratchTrainer, net: nn.Module, loss_and_metrics: LossAndMetrics, loader: Any
) -> tuple[dict[str, float], torch.Tensor | None]:
    """Test what the Lightning engine tests (the best checkpoint, else the final weights); log and return the test
    metrics and the confusion matrix (None for regression), summed over all processes."""
    best = loop.checkpoints.best_path if loop.settings.save_best else None
    if best is not None:
        load_net_weights(best, net)
    log.info("Testing %s", best or "the final weights (no checkpoint chose the best)")
    metrics = loss_and_metrics.metrics.clone(prefix="test/").to(loop.device)
    confusion = loss_and_metrics.confusion.to(loop.device) if loss_and_metrics.confusion is not None else None
    limit = batch_limit(loop.settings.limit_test_batches, len(loader))
    tested = loop.evaluate(net, loss_and_metrics, metrics, loader, limit, "test", confusion)
    loop.log_metrics(tested)
    return tested, confusion.compute().cpu() if confusion is not None else None


def _log_parameter_counts(net: nn.Module) -> None:
    """The scratch loop's model summary: what Lightning's ModelSummary ends with."""
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    total = sum(p.numel() for p in net.parameters())
    log.info("%s: %s parameters, %s trainable", type(net).__name__, f"{total:,}", f"{trainable:,}")


def fit_from_scratch(
    cfg: DictConfig,
    datamodule: TensorDataModule,
    net: nn.Module,
    stop: StopRequest,
    resume_from: str | None,
    ready: Callable[[], None],
) -> FitResult:
    """``resume_from``: the checkpoint to continue (``ckpt_path``, or the one ``resume=auto`` found); ``ready`` is
    called once everything is built, right before fitting."""
    device, rank, world_size = init_distributed(uses_cuda(str(cfg.trainer.accelerator)), named_gpu(cfg.trainer))
    datamodule.set_placement(device, rank, world_size)
    datamodule.prepare_data()
    datamodule.setup("fit")
    train_loader, val_loader = datamodule.train_dataloader(), datamodule.val_dataloader()
    settings = settings_from_config(cfg, len(train_loader), len(val_loader), datamodule.holds_out_validation())
    use_deterministic_algorithms(cfg.trainer.get("deterministic"), cfg.trainer.get("benchmark"))
    loggers = [] if cfg.trainer.get("fast_dev_run") else builders.build_loggers(cfg, resume_from)
    reporter = trial_reporter(cfg.optimized_metric) if world_size == 1 else None  # one trial, one reporter
    loop = ScratchTrainer(settings, device, loggers, rank, world_size, reporter.report if reporter else None)
    loss_and_metrics = builders.build_loss_and_metrics(cfg.module)
    scheduler = instantiate(cfg.scheduler, _convert_="all") if cfg.scheduler else None
    resume = load_net_weights(resume_from, net) if resume_from else None
    if settings.throughput:
        flops = training_flops_per_sample(net, datamodule.training_inputs(1))
        loop.flops_and_peak = flops, peak_flops(device, settings.precision)
    ready()
    if (cfg.get("callbacks") or {}).get("model_summary") and cfg.trainer.get("enable_model_summary", True):
        _log_parameter_counts(net)

    status = "failed"
    try:
        with peers_watched(world_size):
            batches_per_epoch = num_batches(train_loader, settings.limit_train_batches)
            total_steps = math.ceil(batches_per_epoch / settings.accumulate_grad_batches) * settings.max_epochs
            make_optimizer = instantiate(cfg.optimizer)
            state = FitState.on_device(
                net, loss_and_metrics, make_optimizer, scheduler, total_steps, device, world_size
            )
            metrics = loop.fit(state, train_loader, val_loader, stop, resume)
            if cfg.test:
                tested, matrix = _test(loop, net, loss_and_metrics, datamodule.test_dataloader())
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
        best_checkpoint=str(checkpoint) if (checkpoint := loop.checkpoints.tested_checkpoint) else None,
        # as Lightning: no monitored checkpoint, no best
        best_score=loop.checkpoints.best_score if settings.save_best else None,
        world_size=world_size,
    )
