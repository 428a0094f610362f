"""The Optuna trial a sweep job runs for: after each validation its metric goes to the study, whose pruner may stop
the job there (``TrialPrunedError``; the job's record says ``pruned``).

The sweeper passes the trial's id as ``hydra.sweeper.trial_id`` and keeps the study in a database, so a job finds
its trial in any process a launcher starts (joblib workers, SLURM jobs).
"""

import logging
import math
from collections.abc import Mapping
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from src.errors import TrialPrunedError

log = logging.getLogger(__name__)


class TrialReporter:
    def __init__(self, trial: Any, monitor: str) -> None:
        self.trial, self.monitor = trial, monitor

    def report(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Tell the trial ``monitor`` after ``epoch``; raise ``TrialPrunedError`` when the pruner says stop."""
        value = metrics.get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return  # not validated this epoch, or diverged (the job then fails on its own)
        self.trial.report(float(value), epoch)
        if self.trial.should_prune():
            raise TrialPrunedError(
                f"Optuna trial {self.trial.number} pruned after epoch {epoch}: {self.monitor} = {float(value):.6g} "
                "trails the other trials at this epoch"
            )


def trial_reporter(monitor: str) -> TrialReporter | None:
    """The reporter of this sweep job's trial, or None outside an Optuna search and for a metric other than a
    ``val/`` one: after a validation Lightning holds the previous epoch's ``train/`` metrics, and ``test/`` ones come
    after training, so both engines prune on validation metrics alone."""
    if not HydraConfig.initialized():
        return None
    sweeper = HydraConfig.get().sweeper
    if sweeper.get("trial_id") is None:
        return None
    if not monitor.startswith("val/"):
        if sweeper.get("pruner") and rank_zero_only.rank == 0:  # one line per job, not one per DDP process
            log.warning(
                "Optuna: the pruner judges trials after each validation, but optimized_metric=%s is no val/ metric: "
                "it prunes no trial",
                monitor,
            )
        return None
    import optuna  # only sweep jobs pay for the import

    pruner = instantiate(sweeper.pruner) if sweeper.get("pruner") else optuna.pruners.NopPruner()
    study = optuna.load_study(study_name=sweeper.study_name, storage=sweeper.storage, pruner=pruner)
    return TrialReporter(optuna.trial.Trial(study, int(sweeper.trial_id)), monitor)


class OptunaPruning(L.Callback):
    """Lightning's side of :class:`TrialReporter`; with several processes per job it stays off (one trial, one
    reporter)."""

    def __init__(self, reporter: TrialReporter) -> None:
        self.reporter = reporter

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.world_size > 1:
            return
        self.reporter.report(trainer.current_epoch, {k: float(v) for k, v in trainer.callback_metrics.items()})
