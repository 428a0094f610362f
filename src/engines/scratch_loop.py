"""The training loop Lightning runs for us, written out by hand in plain PyTorch.

:meth:`ScratchTrainer.train_step` is the lesson's five steps (forward, loss, zero_grad, backward, step) in that
order, with mixed precision, gradient accumulation, the non-finite check and clipping written where they happen;
around it :class:`ScratchTrainer` runs the epochs, interrupts, partial-epoch resume and validation, and asks its
:class:`CheckpointKeeper` which checkpoints to write and when to stop early.

Same configs, model, data module, loss, metrics, optimizer and scheduler as the Lightning engine, and the same
order of operations, so both give the same losses and weights (tests/test_engine_parity.py checks it).
``python train.py engine=scratch ...`` runs it.
"""

import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from itertools import islice
from typing import Any, NoReturn

import torch
from lightning.pytorch.loggers import Logger
from torch import nn

from src.callbacks.stop_on_non_finite import NonFiniteWatch, diverged_message
from src.engines.checkpoint_keeper import CheckpointKeeper
from src.engines.distributed import all_reduce_sum, barrier
from src.engines.loop_inputs import FitState, LoopSettings, num_batches, set_epoch
from src.errors import DivergedError, RunInterruptedError
from src.stop_and_resume.checkpoints import restore_progress, save_atomic, save_progress
from src.stop_and_resume.interrupt import StopRequest, interrupted_message
from src.stop_and_resume.partial_epoch import gathered_state_dict
from src.training.epoch_metrics import EpochMetrics
from src.training.loss_and_metrics import LossAndMetrics
from src.training.metrics import MeanLoss
from src.training.precision import AUTOCAST_DTYPES
from src.training.schedulers import step_epoch_scheduler
from src.training.test_time_augmentation import evaluation_outputs
from src.training.throughput import device_seconds, throughput_metrics
from src.utils.progress_bar import EpochProgressBar

log = logging.getLogger(__name__)


class ScratchTrainer:
    """``fit`` trains with validation, checkpoints and early stopping; ``evaluate`` validates and tests."""

    def __init__(
        self,
        settings: LoopSettings,
        device: torch.device,
        loggers: list[Logger],
        rank: int = 0,
        world_size: int = 1,
        on_validated: Callable[[int, dict[str, float]], None] | None = None,
    ) -> None:
        """``on_validated(epoch, metrics)`` after each validation, e.g. an Optuna trial's report (it may raise to
        stop the run there)."""
        self.settings, self.device, self.loggers = settings, device, loggers
        self.on_validated = on_validated
        self.rank, self.world_size = rank, world_size
        dtype = AUTOCAST_DTYPES.get(settings.precision)
        if dtype is torch.float16 and device.type != "cuda":
            dtype = torch.bfloat16  # float16 autocast needs CUDA; bfloat16 is what the CPU can do
        self.autocast_dtype = dtype
        # float16 scales the loss before backward, so that small gradients do not underflow (a no-op otherwise)
        self.scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
        self.watch = NonFiniteWatch()
        self.epoch, self.global_step = 0, 0
        self.checkpoints = CheckpointKeeper(settings, rank)  # best and last checkpoints, early stopping
        self.metrics: dict[str, float] = {}  # the latest of each epoch metric; kept in checkpoints
        # training FLOPs of one sample and the device's peak FLOP/s, for the FLOP utilization; found once per fit
        self.flops_and_peak: tuple[int | None, int | None] = (None, None)
        self.epoch_samples = 0  # trained in the latest epoch (by this process)

    # ----------------------------------------------------------------- the loop
    def fit(
        self,
        state: FitState,
        train_loader: Iterable,
        val_loader: Iterable,
        stop: StopRequest,
        resume_from: dict[str, Any] | None = None,
    ) -> dict[str, float]:
        """Train ``state`` to ``max_epochs`` or early stopping, validating as configured."""
        s, loss_and_metrics = self.settings, state.loss_and_metrics
        partial_epoch = self._restore(resume_from, state) if resume_from is not None else None

        with stop.at_step_boundaries():
            for epoch in range(self.epoch, s.max_epochs):
                self.epoch = epoch
                set_epoch(train_loader, epoch)
                lr = {f"lr-{type(state.optimizer).__name__}": state.optimizer.param_groups[0]["lr"]}
                started = device_seconds(self.device) if s.throughput else 0.0
                new = self._train_epoch(state, train_loader, stop, partial_epoch)
                if s.throughput:
                    seconds = device_seconds(self.device) - started
                    new |= throughput_metrics(self.epoch_samples, seconds, self.world_size, *self.flops_and_peak)
                partial_epoch = None
                validated = s.limit_val_batches != 0 and (epoch + 1) % s.val_every_n_epochs == 0
                if validated:
                    val = (state.val_metrics, val_loader, s.limit_val_batches)
                    new |= self.evaluate(state.model, loss_and_metrics, *val, "val")
                self.metrics |= new  # validation metrics stay those of the last validated epoch
                if validated and self.on_validated is not None:
                    self.on_validated(epoch, self.metrics)
                self.log_metrics({**lr, **new, "epoch": epoch})
                # Without a validation loop Lightning's checkpoint, early stopping and plateau schedule judge the
                # monitored (train/) metric after every epoch.
                monitor_measured = validated or s.limit_val_batches == 0
                step_epoch_scheduler(state.schedule, self.metrics, monitor_measured)
                score = self.metrics[s.monitor] if monitor_measured else None
                if self.checkpoints.end_of_epoch(epoch, score, lambda: self._checkpoint(state)):
                    checks = "validations" if validated else "epochs"
                    log.info("Early stopping: %s did not improve in %d %s", s.monitor, s.patience, checks)
                    break
                if self._stop_requested(stop):
                    saved = self.checkpoints.saves_last(epoch)  # then the end-of-epoch checkpoint is already written
                    self._interrupt(stop, None if saved else self._checkpoint(state))
        self.epoch = min(self.epoch + 1, s.max_epochs)  # epochs done; a run resumed after its last one trains none
        return dict(self.metrics)

    def _train_epoch(
        self, state: FitState, loader: Any, stop: StopRequest, partial: dict[str, Any] | None
    ) -> dict[str, float]:
        """One epoch of :meth:`train_step`; ``partial`` (from a mid-epoch checkpoint) continues an interrupted epoch
        where it stopped."""
        s = self.settings
        state.model.train()
        mean_loss = MeanLoss().to(self.device)
        mean_loss.persistent(True)  # saved with a mid-epoch checkpoint
        epoch = state.loss_and_metrics.epoch_metrics("train", state.train_metrics, mean_loss)
        start, self.epoch_samples = 0, 0
        if partial is not None:  # partial-epoch resume: the loader, metrics and mean loss as they were
            loader.load_state_dict(partial["loader"])
            if self.rank == 0:  # they hold every process's part (src/stop_and_resume/partial_epoch.py)
                state.train_metrics.load_state_dict(partial["metrics"])
                mean_loss.load_state_dict(partial["loss"])
            start = partial["loader"]["batches_served"]
        total = num_batches(loader, s.limit_train_batches)
        limit = None if s.limit_train_batches is None else max(0, s.limit_train_batches - start)
        with self._progress(f"epoch {self.epoch}", total) as advance:
            for index, (x, y) in enumerate(islice(loader, limit), start=start):
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
                steps = (index + 1) % s.accumulate_grad_batches == 0 or index + 1 == total  # a window's last batch
                starts = index % s.accumulate_grad_batches == 0  # a window's first batch
                self.train_step(state, x, y, epoch, starts=starts, steps=steps)
                self.epoch_samples += x.shape[0]
                if steps:
                    self.global_step += 1
                    if state.schedule is not None and state.schedule["interval"] == "step":
                        state.schedule["scheduler"].step()
                    if s.non_finite_every_n_steps and self.global_step % s.non_finite_every_n_steps == 0:
                        self._stop_if_diverged(state)
                advance()
                if steps and index + 1 < total and self._stop_requested(stop):  # interrupted mid-epoch
                    self._stop_if_diverged(state)
                    epoch.flush()  # the batches not yet measured, into the metrics the checkpoint saves
                    metrics, loss = gathered_state_dict(state.train_metrics), gathered_state_dict(mean_loss)
                    partial = {"loader": loader.state_dict(), "metrics": metrics, "loss": loss}
                    self._interrupt(stop, {**self._checkpoint(state), "partial_epoch": partial})
        self._stop_if_diverged(state)
        return self._epoch_result(epoch)

    def train_step(
        self, state: FitState, x: torch.Tensor, y: torch.Tensor, epoch: EpochMetrics, starts: bool, steps: bool
    ) -> torch.Tensor:
        """The five steps of every training loop, in the order they run; returns the loss. ``starts`` and
        ``steps``: the batch opens, or closes, a window of ``trainer.accumulate_grad_batches`` batches whose
        gradients add up into one optimizer step."""
        s = self.settings
        with self.autocast():  # matrix products in 16 bits where the precision says so
            outputs = state.model(x)  # 1. forward
            # 2. loss, as the Lightning module computes it; the batch also goes into the epoch's metrics
            loss = state.loss_and_metrics.batch_loss(outputs, y, epoch)
        if starts:
            state.optimizer.zero_grad()  # 3. zero_grad, once per window
        # 4. backward, of the loss scaled for float16; over a window the gradients add up to those of its mean loss
        window = s.accumulate_grad_batches
        self.scaler.scale(loss / window if window > 1 else loss).backward()
        if not steps:
            return loss
        if s.stop_on_non_finite:  # recorded on the device, read every so many steps: no host sync here
            self.watch.observe(loss, self.global_step)
        if s.gradient_clip_val:
            self.scaler.unscale_(state.optimizer)  # clip the true gradients, not the loss-scaled ones
            nn.utils.clip_grad_norm_(state.model.parameters(), s.gradient_clip_val)
        self.scaler.step(state.optimizer)  # 5. step; the scaler skips it when float16 gradients overflowed
        self.scaler.update()
        return loss

    def autocast(self) -> AbstractContextManager:
        if self.autocast_dtype is None:  # full precision: not even a disabled autocast, whose set-up costs each step
            return nullcontext()
        return torch.autocast(self.device.type, self.autocast_dtype)

    def _stop_if_diverged(self, state: FitState) -> None:
        """The one host read of the non-finite watch: every so many steps and at epoch ends, before any checkpoint."""
        found = self.watch.first_non_finite(state.named_parameters())
        if found is not None:
            what, value, step = found
            lr = state.optimizer.param_groups[0]["lr"]
            raise DivergedError(diverged_message(what, value, step, self.epoch, lr, self.settings.precision))

    def _stop_requested(self, stop: StopRequest) -> bool:
        """Whether any process got SIGTERM or Ctrl-C, agreed by all, so they stop after the same step."""
        if self.world_size == 1:
            return stop.signal_name is not None
        (flag,) = all_reduce_sum(torch.tensor(float(stop.signal_name is not None), device=self.device))
        return bool(flag > 0)

    def _interrupt(self, stop: StopRequest, checkpoint: dict[str, Any] | None) -> NoReturn:
        """Save ``checkpoint`` (a mid-epoch one; None when the end-of-epoch one is saved) as last.ckpt, then stop."""
        directory = self.settings.checkpoint_dir if self.settings.save_on_interrupt else None
        saved = (
            str(directory / "last.ckpt") if directory is not None else "nothing (callbacks.save_on_interrupt is off)"
        )
        if directory is not None and checkpoint is not None:
            if self.rank == 0:
                save_atomic(checkpoint, directory / "last.ckpt")
            barrier()
        message = interrupted_message(stop.signal_name or "SIGTERM", self.epoch, self.global_step, saved)
        raise RunInterruptedError(message)

    # ----------------------------------------------------------------- validation and testing
    @torch.inference_mode()
    def evaluate(
        self,
        model: nn.Module,
        loss_and_metrics: LossAndMetrics,
        metrics: Any,
        loader: Iterable,
        limit: int | None,
        stage: str,
        confusion: Any = None,
    ) -> dict[str, float]:
        """Loss and metrics over the first ``limit`` batches of the loader (all with None); ``confusion`` (a
        torchmetrics confusion matrix) is filled too."""
        model.eval()
        epoch = loss_and_metrics.epoch_metrics(stage, metrics, MeanLoss().to(self.device), confusion)
        for x, y in islice(loader, limit):
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            with self.autocast():
                outputs = evaluation_outputs(model, x, self.settings.test_time_flip, self.settings.test_time_shift)
                loss_and_metrics.batch_loss(outputs, y, epoch)
        return self._epoch_result(epoch)

    def _epoch_result(self, epoch: EpochMetrics) -> dict[str, float]:
        """The epoch's mean loss (weighted by batch size) and metrics over all processes; resets the metrics."""
        return {name: value.item() for name, value in epoch.compute_and_reset().items()}

    # ----------------------------------------------------------------- checkpoints
    def _checkpoint(self, state: FitState) -> dict[str, Any]:
        """Everything an exact resume needs: weights, optimizer, scheduler, loss scaler, counters, RNG states."""
        checkpoint = {
            "engine": "scratch",
            "epoch": self.epoch,
            "global_step": self.global_step,
            **state.state_dict(),
            "scaler": self.scaler.state_dict(),
            "best": self.checkpoints.state_dict(),
        }
        save_progress(checkpoint, self.metrics)  # RNG states and epoch metrics, as the Lightning module saves them
        return checkpoint

    def _restore(self, checkpoint: dict[str, Any], state: FitState) -> dict[str, Any] | None:
        """Continue after the checkpoint's epoch, or inside it for a mid-epoch checkpoint (whose partial epoch is
        returned); weights were loaded by the caller. Lightning checkpoints work too (same layout)."""
        state.load_state_dict(checkpoint)
        if "scaler" in checkpoint:
            self.scaler.load_state_dict(checkpoint["scaler"])
        partial = checkpoint.get("partial_epoch")
        self.epoch = checkpoint["epoch"] + (partial is None)
        self.global_step = checkpoint["global_step"]
        self.checkpoints.load_state_dict(checkpoint.get("best", {}))
        self.metrics = restore_progress(checkpoint)
        return partial

    # ----------------------------------------------------------------- logging and progress
    def log_metrics(self, metrics: dict[str, float]) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.global_step)

    def finish(self, status: str) -> None:
        for logger in self.loggers:
            logger.save()
            logger.finalize(status)

    def _progress(self, description: str, total: int) -> EpochProgressBar:
        return EpochProgressBar(description, total, enabled=self.settings.progress_bar and self.rank == 0)
