"""Fit and test with Lightning's Trainer: the callbacks, loggers and trainer all come from the config."""

import logging
from collections.abc import Callable

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig
from torch import nn

from src.callbacks import PlaceData, SaveOnInterrupt
from src.config import builders
from src.datamodules.base import TensorDataModule
from src.engines.distributed import peers_watched
from src.engines.hook_dispatch import QuietProfiler, skip_unused_batch_hooks
from src.engines.result import FitResult
from src.errors import RunInterruptedError
from src.stop_and_resume.interrupt import StopRequest, interrupted_message
from src.sweeps.trial import OptunaPruning, trial_reporter
from src.utils.figures import publish_confusion_matrix
from src.utils.hparams import log_run_hyperparameters

log = logging.getLogger(__name__)
# Without a validation split: no validation loop, and the validation cadence at its default, since only then do
# Lightning's checkpoint and early stopping judge the monitored train/ metric after every epoch.
NO_VALIDATION = {"limit_val_batches": 0, "check_val_every_n_epoch": 1, "val_check_interval": 1.0}


def fit_with_lightning(
    cfg: DictConfig,
    datamodule: TensorDataModule,
    net: nn.Module,
    stop: StopRequest,
    resume_from: str | None,
    ready: Callable[[], None],
) -> FitResult:
    """``resume_from``: the checkpoint to continue (``ckpt_path``, or the one ``resume=auto`` found); ``ready`` is
    called once the Trainer has accepted its settings, right before fitting."""
    scheduler = instantiate(cfg.scheduler, _convert_="all") if cfg.scheduler else None
    module = instantiate(cfg.module, net=net, optimizer=instantiate(cfg.optimizer), scheduler=scheduler)
    loggers = builders.build_loggers(cfg, resume_from)
    callbacks = [*builders.build_callbacks(cfg, has_logger=bool(loggers)), PlaceData()]
    if (reporter := trial_reporter(cfg.optimized_metric)) is not None:
        callbacks.append(OptunaPruning(reporter))
    no_validation = {} if datamodule.holds_out_validation() else NO_VALIDATION
    quiet = {} if cfg.trainer.get("profiler") else {"profiler": QuietProfiler()}  # none asked: +trainer.profiler=simple
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, **no_validation, **quiet
    )
    skip_unused_batch_hooks(trainer.callbacks)  # with those the Trainer added
    if any(isinstance(c, ModelSummary) for c in callbacks) and not cfg.model.get("compile"):
        # One real input lets the summary count FLOPs and show shapes instead of a column of zeros; not for a
        # compiled network, which would compile once more for a batch of one.
        # In the precision's dtype: Lightning converts batches, not this input (bf16-true, 64-true).
        module.example_input_array = trainer.precision_plugin.convert_input(datamodule.training_inputs(1))
    saver = next((c for c in callbacks if isinstance(c, SaveOnInterrupt)), None)
    if saver is not None:
        saver.stop = stop

    ready()
    with peers_watched(trainer.world_size):
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from)
        except SIGTERMException:  # raised at a step boundary by SaveOnInterrupt; without it, signals stop at once
            epoch, step = trainer.current_epoch, trainer.global_step
            raise RunInterruptedError(interrupted_message(saver.signal_name, epoch, step, str(saver.path))) from None
        metrics = {**module.resumed_metrics, **{name: float(value) for name, value in trainer.callback_metrics.items()}}
        checkpoint = trainer.checkpoint_callback
        best = checkpoint.best_model_path if checkpoint else ""
        if cfg.test:
            # Without a monitored checkpoint no epoch is the best: the final weights, tested in memory, not reloaded
            chosen = best if checkpoint is not None and checkpoint.monitor is not None else ""
            log.info("Testing %s", chosen or "the final weights (no checkpoint chose the best)")
            metrics.update(trainer.test(module, datamodule=datamodule, ckpt_path=chosen or None)[0])
        if cfg.plots and module.confusion_matrix is not None and trainer.is_global_zero and not trainer.fast_dev_run:
            publish_confusion_matrix(module.confusion_matrix, cfg.paths.output_dir, loggers, trainer.global_step)
    if not trainer.fast_dev_run:
        log_run_hyperparameters(loggers, cfg, metrics, trainer.global_step)
    best_score = checkpoint.best_model_score if checkpoint is not None and checkpoint.monitor == cfg.monitor else None
    return FitResult(
        metrics=metrics,
        epochs=trainer.current_epoch,
        global_step=trainer.global_step,
        best_checkpoint=best or None,
        best_score=float(best_score) if best_score is not None else None,
        world_size=trainer.world_size,
    )
