"""The training loop Lightning runs for us, written out by hand in plain PyTorch.

:meth:`ScratchTrainer.train_step` is the lesson's five steps (forward, loss, zero_grad, backward, step) in that
order, with mixed precision, gradient accumulation, the non-finite check and clipping written where they happen;
around it :class:`ScratchTrainer` runs the epochs, interrupts, partial-epoch resume, validation, checkpoints, early
stopping and testing.

Same configs, model, data module, loss, metrics, optimizer and scheduler as the Lightning engine, and the same
order of operations, so both give the same losses and weights (tests/test_engine_parity.py checks it).
``python train.py engine=scratch ...`` runs it.
"""

import logging
import math
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import torch
from lightning.pytorch.loggers import Logger
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torchmetrics import MetricCollection

from src.callbacks.stop_on_non_finite import NonFiniteWatch, diverged_message
from src.engines.distributed import all_reduce_sum, barrier
from src.errors import DivergedError, RunInterruptedError
from src.training.batch_limits import batch_limit
from src.training.checkpoints import (
    copy_into_run,
    load_net_weights,
    net_state,
    restore_rng_states,
    rng_states,
    save_atomic,
)
from src.training.interrupt import StopRequest, interrupted_message
from src.training.metrics import MeanLoss
from src.training.objectives import Objective
from src.training.schedulers import build_scheduler
from src.training.test_time_augmentation import evaluation_outputs
from src.training.throughput import device_seconds, throughput_metrics

log = logging.getLogger(__name__)

AUTOCAST_DTYPES = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}


@dataclass
class LoopSettings:
    """The knobs of the loop; ``scratch_engine.settings_from_config`` reads them from the same ``trainer`` and
    ``callbacks`` config Lightning gets."""

    max_epochs: int
    min_epochs: int = 0  # early stopping waits for these
    precision: str = "32-true"
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int = 1
    monitor: str = "val/loss"
    mode: str = "min"
    patience: int | None = None  # early stopping; None = off
    min_delta: float = 0.0
    checkpoint_dir: Path | None = None  # None: no checkpoints at all
    save_best: bool = True  # keep the best epoch's checkpoint (callbacks.model_checkpoint)
    last_every_n_epochs: int = 1  # refresh last.ckpt after epochs n, 2n, ...; 0: never (callbacks.last_checkpoint)
    save_on_interrupt: bool = True  # SIGTERM or Ctrl-C: save last.ckpt before stopping (callbacks.save_on_interrupt)
    progress_bar: bool = True
    limit_train_batches: int | None = None
    limit_val_batches: int | None = None  # 0: no validation
    limit_test_batches: float | int | None = None  # as in the config: the test loader is built after fit
    val_every_n_epochs: int = 1  # Lightning's check_val_every_n_epoch: validate after epochs n, 2n, ...
    test_time_flip: bool = False  # evaluate on the mean outputs for each image and its mirror image
    test_time_shift: int = 0  # ... and for the views translated by this many pixels
    stop_on_non_finite: bool = True  # watch loss and gradients every step without a sync
    non_finite_every_n_steps: int = 100  # read the watch (one sync) this often and at epoch ends; 0: epoch ends only
    throughput: bool = True  # log samples/s (and FLOP utilization) each epoch (callbacks.throughput)


@dataclass
class FitState:
    """What a fit trains and measures, passed around as one object."""

    model: nn.Module  # the network, wrapped in DistributedDataParallel with several processes
    objective: Objective  # loss, metrics and the outputs-to-predictions transform of the task
    optimizer: Optimizer
    schedule: dict[str, Any] | None  # Lightning's lr-scheduler dict: scheduler, interval, monitor
    train_metrics: MetricCollection
    val_metrics: MetricCollection


def set_epoch(loader: Iterable, epoch: int) -> None:
    """Reshuffle for this epoch: the per-epoch permutation is keyed by the epoch (what Lightning does for us)."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def batches(loader: Iterable, limit: int | None) -> Iterable:
    for index, batch in enumerate(loader):
        if limit is not None and index >= limit:
            return
        yield batch


class ScratchTrainer:
    """``fit`` trains with validation, checkpoints and early stopping; ``test`` tests the best checkpoint."""

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
        self.watch = NonFiniteWatch(loss_only=self.scaler.is_enabled())
        self.epoch, self.global_step = 0, 0
        self.best_score: float | None = None
        self.best_path: Path | None = None
        self.last_path: Path | None = None  # last.ckpt, once written
        self.bad_epochs = 0
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
        """Train ``state`` (from :meth:`prepare`) to ``max_epochs`` or early stopping, validating as configured."""
        s, objective = self.settings, state.objective
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
                    new |= self.evaluate(state.model, objective, *val, "val")
                self.metrics |= new  # validation metrics stay those of the last validated epoch
                if validated and self.on_validated is not None:
                    self.on_validated(epoch, self.metrics)
                self.log_metrics({**lr, **new, "epoch": epoch})
                # Without a validation loop Lightning's checkpoint, early stopping and plateau schedule judge the
                # monitored (train/) metric after every epoch.
                monitor_measured = validated or s.limit_val_batches == 0
                self._step_epoch_scheduler(state.schedule, monitor_measured)
                if self._end_of_epoch(state, self.metrics[s.monitor] if monitor_measured else None):
                    checks = "validations" if validated else "epochs"
                    log.info("Early stopping: %s did not improve in %d %s", s.monitor, s.patience, checks)
                    break
                if self._stop_requested(stop):
                    saved = self._saves_last(epoch)  # then the end-of-epoch checkpoint is already written
                    self._interrupt(stop, None if saved else self._checkpoint(state))
        self.epoch = min(self.epoch + 1, s.max_epochs)  # epochs done; a run resumed after its last one trains none
        return dict(self.metrics)

    def prepare(
        self,
        net: nn.Module,
        objective: Objective,
        make_optimizer: Callable[[Iterable[nn.Parameter]], Optimizer],
        scheduler_config: dict[str, Any] | None,
        train_loader: Iterable,
    ) -> FitState:
        """The network on the device (wrapped for DDP), its optimizer and schedule, and the metrics of a fit."""
        s = self.settings
        model = net.to(self.device)
        if self.world_size > 1:  # gradients are averaged across processes during backward
            model = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        objective.loss.to(self.device)
        train_metrics = objective.metrics.clone(prefix="train/").to(self.device)
        train_metrics.persistent(True)  # saved with a mid-epoch checkpoint
        optimizer = make_optimizer(model.parameters())
        steps_per_epoch = math.ceil(self._num_batches(train_loader, s.limit_train_batches) / s.accumulate_grad_batches)
        schedule = (
            build_scheduler(scheduler_config, optimizer, steps_per_epoch * s.max_epochs) if scheduler_config else None
        )
        val_metrics = objective.metrics.clone(prefix="val/").to(self.device)
        return FitState(model, objective, optimizer, schedule, train_metrics, val_metrics)

    def _train_epoch(
        self, state: FitState, loader: Any, stop: StopRequest, partial: dict[str, Any] | None
    ) -> dict[str, float]:
        """One epoch of :meth:`train_step`; ``partial`` (from a mid-epoch checkpoint) continues an interrupted epoch
        where it stopped."""
        s = self.settings
        state.model.train()
        mean_loss = MeanLoss().to(self.device)
        mean_loss.persistent(True)  # saved with a mid-epoch checkpoint
        start, self.epoch_samples = 0, 0
        if partial is not None:  # partial-epoch resume: the loader, metrics and mean loss as they were
            loader.load_state_dict(partial["loader"])
            state.train_metrics.load_state_dict(partial["metrics"])
            mean_loss.load_state_dict(partial["loss"])
            start = partial["loader"]["batches_served"]
        total = self._num_batches(loader, s.limit_train_batches)
        limit = None if s.limit_train_batches is None else s.limit_train_batches - start
        with self._progress(f"epoch {self.epoch}", total) as advance:
            for index, (x, y) in enumerate(batches(loader, limit), start=start):
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
                steps = (index + 1) % s.accumulate_grad_batches == 0 or index + 1 == total  # a window's last batch
                outputs, loss = self.train_step(state, x, y, starts=index % s.accumulate_grad_batches == 0, steps=steps)
                self.epoch_samples += x.shape[0]
                if steps:
                    self.global_step += 1
                    if state.schedule is not None and state.schedule["interval"] == "step":
                        state.schedule["scheduler"].step()
                    if s.non_finite_every_n_steps and self.global_step % s.non_finite_every_n_steps == 0:
                        self._stop_if_diverged(state)
                state.objective.measure(outputs, loss, y, state.train_metrics, mean_loss)
                advance()
                if steps and index + 1 < total and self._stop_requested(stop):  # interrupted mid-epoch
                    self._stop_if_diverged(state)
                    saved = {"loader": loader.state_dict(), "metrics": state.train_metrics.state_dict()}
                    partial = {**saved, "loss": mean_loss.state_dict()}
                    self._interrupt(stop, {**self._checkpoint(state), "partial_epoch": partial})
        self._stop_if_diverged(state)
        return self._epoch_result("train", mean_loss, state.train_metrics)

    def train_step(
        self, state: FitState, x: torch.Tensor, y: torch.Tensor, starts: bool, steps: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The five steps of every training loop, in the order they run; returns the outputs and the loss.
        ``starts`` and ``steps``: the batch opens, or closes, a window of ``trainer.accumulate_grad_batches``
        batches whose gradients add up into one optimizer step."""
        s = self.settings
        with self.autocast():  # matrix products in 16 bits where the precision says so
            outputs = state.model(x)  # 1. forward
            loss = state.objective.loss(outputs, y)  # 2. loss
        if starts:
            state.optimizer.zero_grad()  # 3. zero_grad, once per window
        # 4. backward, of the loss scaled for float16; over a window the gradients add up to those of its mean loss
        window = s.accumulate_grad_batches
        self.scaler.scale(loss / window if window > 1 else loss).backward()
        if not steps:
            return outputs, loss
        if s.stop_on_non_finite:  # recorded on the device, read every so many steps: no host sync here
            self.watch.observe(loss, state.model.named_parameters(), self.global_step)
        if s.gradient_clip_val:
            self.scaler.unscale_(state.optimizer)  # clip the true gradients, not the loss-scaled ones
            nn.utils.clip_grad_norm_(state.model.parameters(), s.gradient_clip_val)
        self.scaler.step(state.optimizer)  # 5. step; the scaler skips it when float16 gradients overflowed
        self.scaler.update()
        return outputs, loss

    def autocast(self) -> AbstractContextManager:
        if self.autocast_dtype is None:  # full precision: not even a disabled autocast, whose set-up costs each step
            return nullcontext()
        return torch.autocast(self.device.type, self.autocast_dtype)

    def _stop_if_diverged(self, state: FitState) -> None:
        """The one host read of the non-finite watch: every so many steps and at epoch ends, before any checkpoint."""
        found = self.watch.first_non_finite()
        if found is not None:
            what, value, step = found
            lr = state.optimizer.param_groups[0]["lr"]
            raise DivergedError(diverged_message(what, value, step, self.epoch, lr, self.settings.precision))

    def _step_epoch_scheduler(self, schedule: dict[str, Any] | None, monitor_measured: bool) -> None:
        """``monitor_measured``: the metric a plateau schedule follows is this epoch's."""
        if schedule is None or schedule["interval"] != "epoch":
            return
        scheduler = schedule["scheduler"]
        if not isinstance(scheduler, ReduceLROnPlateau):
            scheduler.step()
        elif monitor_measured:
            scheduler.step(self.metrics[schedule["monitor"]])

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
    def test(self, net: nn.Module, objective: Objective, loader: Any) -> tuple[dict[str, float], Any]:
        """Test what the Lightning engine tests (the best checkpoint, else the final weights); log and return the
        test metrics and the confusion matrix (None for regression), summed over all processes."""
        best = self.best_path if self.settings.save_best else None
        if best is not None:
            load_net_weights(best, net)
        log.info("Testing %s", best or "the final weights (no checkpoint chose the best)")
        metrics = objective.metrics.clone(prefix="test/").to(self.device)
        confusion = objective.confusion.to(self.device) if objective.confusion is not None else None
        objective.loss.to(self.device)
        limit = batch_limit(self.settings.limit_test_batches, len(loader))
        tested = self.evaluate(net, objective, metrics, loader, limit, "test", confusion)
        self.log_metrics(tested)
        return tested, confusion.compute().cpu() if confusion is not None else None

    @torch.inference_mode()
    def evaluate(
        self,
        model: nn.Module,
        objective: Objective,
        metrics: Any,
        loader: Iterable,
        limit: int | None,
        stage: str,
        confusion: Any = None,
    ) -> dict[str, float]:
        """Loss and metrics over the first ``limit`` batches of the loader (all with None); ``confusion`` (a
        torchmetrics confusion matrix) is filled too."""
        model.eval()
        mean_loss = MeanLoss().to(self.device)
        for x, y in batches(loader, limit):
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            with self.autocast():
                outputs = evaluation_outputs(model, x, self.settings.test_time_flip, self.settings.test_time_shift)
                loss = objective.loss(outputs, y)
            objective.measure(outputs, loss, y, metrics, mean_loss, confusion)
        return self._epoch_result(stage, mean_loss, metrics)

    def _epoch_result(self, stage: str, mean_loss: MeanLoss, metrics: Any) -> dict[str, float]:
        """The epoch's mean loss (weighted by batch size) and metrics over all processes; resets the metrics."""
        metric_values = {name: value.item() for name, value in metrics.compute().items()}
        metrics.reset()
        return {f"{stage}/loss": mean_loss.compute().item(), **metric_values}

    # ----------------------------------------------------------------- checkpoints and early stopping
    def _improved(self, score: float) -> bool:
        if self.best_score is None:
            return math.isfinite(score)
        delta = self.settings.min_delta
        return score < self.best_score - delta if self.settings.mode == "min" else score > self.best_score + delta

    @property
    def tested_checkpoint(self) -> Path | None:
        """What Lightning tests: the best epoch's checkpoint; with no best kept, the newest last.ckpt."""
        return self.best_path if self.settings.save_best else self.last_path

    def _saves_last(self, epoch: int) -> bool:
        every = self.settings.last_every_n_epochs
        return self.settings.checkpoint_dir is not None and every > 0 and (epoch + 1) % every == 0

    def _end_of_epoch(self, state: FitState, score: float | None) -> bool:
        """Save the checkpoints due (best, last); return whether early stopping says stop. ``score``: None in epochs
        without validation, which neither improve nor count against patience."""
        s = self.settings
        improved = score is not None and self._improved(score)
        if improved:
            self.best_score, self.bad_epochs = score, 0
        elif score is not None:
            self.bad_epochs += 1
        save_best, save_last = improved and s.save_best and s.checkpoint_dir is not None, self._saves_last(self.epoch)
        if save_best or save_last:
            assert s.checkpoint_dir is not None
            previous = self.best_path
            if save_best:
                self.best_path = s.checkpoint_dir / f"epoch_{self.epoch:03d}.ckpt"
            if save_last:
                self.last_path = s.checkpoint_dir / "last.ckpt"
            if self.rank == 0:  # every process knows the paths; one writes the files
                checkpoint = self._checkpoint(state)
                if save_best:
                    save_atomic(checkpoint, self.best_path)
                    if previous is not None and previous != self.best_path:
                        previous.unlink(missing_ok=True)
                if save_last:
                    save_atomic(checkpoint, s.checkpoint_dir / "last.ckpt")
            barrier()
        return s.patience is not None and self.bad_epochs >= s.patience and self.epoch + 1 >= s.min_epochs

    def _checkpoint(self, state: FitState) -> dict[str, Any]:
        """Everything an exact resume needs: weights, optimizer, scheduler, loss scaler, counters, RNG states."""
        model = state.model
        return {
            "engine": "scratch",
            "epoch": self.epoch,
            "global_step": self.global_step,
            "state_dict": net_state(model.module if isinstance(model, DistributedDataParallel) else model),
            "optimizer_states": [state.optimizer.state_dict()],
            "lr_schedulers": [state.schedule["scheduler"].state_dict()] if state.schedule else [],
            "scaler": self.scaler.state_dict(),
            "best": {
                "score": self.best_score,
                "path": str(self.best_path) if self.best_path else None,
                "bad_epochs": self.bad_epochs,
                "last_path": str(self.last_path) if self.last_path else None,
            },
            "rng": rng_states(),
            "metrics": dict(self.metrics),
        }

    def _restore(self, checkpoint: dict[str, Any], state: FitState) -> dict[str, Any] | None:
        """Continue after the checkpoint's epoch, or inside it for a mid-epoch checkpoint (whose partial epoch is
        returned); weights were loaded by the caller. Lightning checkpoints work too (same layout)."""
        state.optimizer.load_state_dict(checkpoint["optimizer_states"][0])
        if state.schedule and checkpoint.get("lr_schedulers"):
            state.schedule["scheduler"].load_state_dict(checkpoint["lr_schedulers"][0])
        if "scaler" in checkpoint:
            self.scaler.load_state_dict(checkpoint["scaler"])
        partial = checkpoint.get("partial_epoch")
        self.epoch = checkpoint["epoch"] + (partial is None)
        self.global_step = checkpoint["global_step"]
        best = checkpoint.get("best", {})
        self.best_score, self.bad_epochs = best.get("score"), best.get("bad_epochs", 0)
        self.best_path = Path(best["path"]) if best.get("path") else None
        self.last_path = Path(best["last_path"]) if best.get("last_path") else None
        tracked = self.best_path or self.last_path
        if self.settings.checkpoint_dir is not None and tracked is not None:  # resumed elsewhere: keep copies here
            self.best_path, self.last_path = (
                copy_into_run(path, tracked.parent, self.settings.checkpoint_dir, copy=self.rank == 0)
                for path in (self.best_path, self.last_path)
            )
        if "rng" in checkpoint:
            restore_rng_states(checkpoint["rng"])
        self.metrics = dict(checkpoint.get("metrics", {}))
        return partial

    # ----------------------------------------------------------------- logging and progress
    def log_metrics(self, metrics: dict[str, float]) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.global_step)

    def finish(self, status: str) -> None:
        for logger in self.loggers:
            logger.save()
            logger.finalize(status)

    def _progress(self, description: str, total: int):
        return _ProgressBar(description, total, enabled=self.settings.progress_bar and self.rank == 0)

    @staticmethod
    def _num_batches(loader: Any, limit: int | None) -> int:
        return len(loader) if limit is None else min(len(loader), limit)


class _ProgressBar:
    """A rich progress bar over one epoch's batches (or nothing, when disabled)."""

    def __init__(self, description: str, total: int, enabled: bool) -> None:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self.progress = Progress(*columns, transient=True) if enabled else None
        self.description, self.total = description, total

    def __enter__(self) -> Callable[[], None]:
        if self.progress is None:
            return lambda: None
        self.progress.start()
        task = self.progress.add_task(self.description, total=self.total)
        return lambda: self.progress.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
