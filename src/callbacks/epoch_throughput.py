"""Log each epoch's training throughput, and its FLOP utilization where the device's peak is known."""

from typing import Any

import lightning as L

from src.training.throughput import device_seconds, peak_flops, throughput_metrics, training_flops_per_sample


class EpochThroughput(L.Callback):
    """``throughput/samples_per_sec`` (and ``throughput/mfu``) once per training epoch, to every logger; the time of
    validation inside an epoch is left out. No host sync per step: the device is waited for at epoch and validation
    boundaries only (see ``src/training/throughput.py``)."""

    def __init__(self) -> None:
        self.flops_per_sample: int | None = None
        self.peak: int | None = None
        self.samples = 0
        self.seconds = 0.0
        self.started: float | None = None  # while training batches run

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        example = pl_module.example_input_array
        net = getattr(pl_module, "net", pl_module)
        self.flops_per_sample = training_flops_per_sample(net, example) if example is not None else None
        self.peak = peak_flops(trainer.strategy.root_device, str(trainer.precision))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.samples, self.seconds = 0, 0.0
        self.started = device_seconds(trainer.strategy.root_device)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *_: Any
    ) -> None:
        self.samples += batch[0].shape[0]

    def _pause(self, trainer: L.Trainer) -> None:
        if self.started is not None:
            self.seconds += device_seconds(trainer.strategy.root_device) - self.started
            self.started = None

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._pause(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.training:
            self.started = device_seconds(trainer.strategy.root_device)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._pause(trainer)
        metrics = throughput_metrics(self.samples, self.seconds, trainer.world_size, self.flops_per_sample, self.peak)
        pl_module.log_dict(metrics, on_epoch=True)
