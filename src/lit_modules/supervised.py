"""One LightningModule for every supervised task; the task decides loss and metrics, configs decide the rest."""

from collections.abc import Callable, Mapping
from typing import Any

import torch
from lightning import LightningModule
from torch import nn
from torch.optim import Optimizer
from torchmetrics import Metric

from src.stop_and_resume.checkpoints import restore_progress, save_progress
from src.stop_and_resume.partial_epoch import gathered_state_dict
from src.training.loss_and_metrics import task_loss_and_metrics
from src.training.metrics import MeanLoss
from src.training.schedulers import build_scheduler
from src.training.test_time_augmentation import evaluation_outputs

OptimizerFactory = Callable[..., Optimizer]
PARTIAL_EPOCH_STATES = ("train_metrics", "train_loss")  # saved with a checkpoint written mid-epoch


class SupervisedModule(LightningModule):
    """Wraps a plain ``nn.Module``; logs ``{train,val,test}/loss`` and the task's metrics (``val/acc``, ...).

    ``optimizer`` is a partial taking the parameters (``optimizer=adamw``; None to evaluate only); ``scheduler`` is
    Lightning's lr-scheduler dict whose ``scheduler`` entry is a partial taking the optimizer (``scheduler=cosine``).
    ``loss`` is a name (``mse``) or a module built from a ``_target_`` node; ``metrics`` adds metrics by name to the
    task's defaults (None removes a default).
    ``test_time_flip`` and ``test_time_shift`` validate and test on the mean outputs over flipped and translated
    views of each image (``src/training/test_time_augmentation.py``).
    """

    def __init__(
        self,
        net: nn.Module,
        task: str,
        num_outputs: int,
        optimizer: OptimizerFactory | None = None,
        scheduler: dict[str, Any] | None = None,
        loss: str | nn.Module | None = None,
        label_smoothing: float = 0.0,
        metrics: Mapping[str, Metric | None] | None = None,
        test_time_flip: bool = False,
        test_time_shift: int = 0,
    ) -> None:
        super().__init__()
        built = ["loss"] if isinstance(loss, nn.Module) else []  # a module is saved with the weights, not as an hparam
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler", "metrics", *built])
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_config = dict(scheduler) if scheduler else None
        self.test_time_flip, self.test_time_shift = test_time_flip, test_time_shift
        self.resumed_metrics: dict[str, float] = {}  # the epoch metrics saved with the checkpoint fit resumed from
        loss_and_metrics = task_loss_and_metrics(task, num_outputs, loss, label_smoothing, metrics)
        self.loss_and_metrics = loss_and_metrics
        self.loss_fn = loss_and_metrics.loss  # a submodule: it moves to the device with the network
        self.train_metrics = loss_and_metrics.metrics.clone(prefix="train/")
        self.val_metrics = loss_and_metrics.metrics.clone(prefix="val/")
        self.test_metrics = loss_and_metrics.metrics.clone(prefix="test/")
        # Epoch means of the loss, weighted by batch size, synchronized across processes like the other metrics.
        # No NaN check: it would read every step's loss on the host (a GPU sync per step), and dropping NaNs would
        # hide a diverged run, whose mean loss shows as NaN (stop_on_non_finite stops it at the first one).
        self.train_loss, self.val_loss, self.test_loss = MeanLoss(), MeanLoss(), MeanLoss()
        # Saved in checkpoints: an epoch interrupted and resumed mid-way still reports its mean over every batch.
        self.train_metrics.persistent(True)
        self.train_loss.persistent(True)
        self.test_confusion = loss_and_metrics.confusion
        self.confusion_matrix: torch.Tensor | None = None
        self.epoch_metrics = {
            "train": loss_and_metrics.epoch_metrics("train", self.train_metrics, self.train_loss),
            "val": loss_and_metrics.epoch_metrics("val", self.val_metrics, self.val_loss),
            "test": loss_and_metrics.epoch_metrics("test", self.test_metrics, self.test_loss, self.test_confusion),
        }
        self.register_state_dict_pre_hook(self._measure_pending_batches)  # a mid-epoch checkpoint saves them

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        outputs = self.net(x) if stage == "train" else self.evaluation_outputs(x)  # net: one module call, not two
        return self.loss_and_metrics.batch_loss(outputs, y, self.epoch_metrics[stage])

    def _log_epoch_metrics(self, stage: str) -> None:
        # Computed here, once per epoch and in the same order on every process: logging the metric objects on every
        # step cost Lightning ~4 ms per step (2 CPU cores, 2026-11-23), and a lazily synchronized value read by the
        # progress bar on rank 0 alone would deadlock DDP.
        self.log_dict(self.epoch_metrics[stage].compute_and_reset(), prog_bar=stage == "val")

    def _measure_pending_batches(self, *_: object) -> None:
        for epoch in self.epoch_metrics.values():
            epoch.flush()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def on_train_epoch_end(self) -> None:
        self._log_epoch_metrics("train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics("test")
        matrix = self.epoch_metrics["test"].confusion_matrix()
        if matrix is not None:
            self.confusion_matrix = matrix.cpu()

    def evaluation_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """The outputs validation and testing score: with the run's test-time augmentation."""
        return evaluation_outputs(self, x, self.test_time_flip, self.test_time_shift)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions (class scores, probabilities or values) as validation and testing make them."""
        return self.loss_and_metrics.to_predictions(self.evaluation_outputs(x))

    def predict_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        return self.predict(batch[0])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        save_progress(checkpoint, self.trainer.callback_metrics)
        if self.trainer.world_size > 1:  # a mid-epoch checkpoint: every process's part of the epoch so far
            for name in PARTIAL_EPOCH_STATES:
                checkpoint["state_dict"].update(gathered_state_dict(getattr(self, name), prefix=f"{name}."))

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.resumed_metrics = restore_progress(checkpoint)
        if self.global_rank > 0:  # rank 0 takes the gathered states back; the others start the epoch's part empty
            for name in PARTIAL_EPOCH_STATES:
                checkpoint["state_dict"].update(getattr(self, name).state_dict(prefix=f"{name}."))

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise ValueError("this module was built without an optimizer (for evaluation); it cannot be fitted")
        optimizer = self.optimizer_factory(self.parameters())
        if not self.scheduler_config:
            return optimizer
        total_steps = int(self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": build_scheduler(self.scheduler_config, optimizer, total_steps)}
