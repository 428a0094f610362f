"""What Lightning spends on calling hooks, cut without changing what any hook does.

Every batch, Lightning calls each per-batch hook of every callback, overridden or not, each inside
``trainer.profiler.profile(name)``: 7 to 8.5 µs a step per callback on 2 CPU cores (2026-12-05), as much as a small
network's forward pass. Lightning skips a hook attribute that is not callable, and the profiler is ours to choose.
"""

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.profilers import PassThroughProfiler

STAGES = ("train", "validation", "test", "predict")
PER_BATCH_HOOKS = (
    *(f"on_{stage}_batch_{moment}" for stage in STAGES for moment in ("start", "end")),
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
)


class QuietProfiler(PassThroughProfiler):
    """Lightning's default, which records nothing, but hands out one shared empty context instead of building a
    generator-based one per hook call; ``+trainer.profiler=simple`` (or any) replaces it."""

    _nothing = nullcontext()

    def profile(self, action_name: str) -> AbstractContextManager:  # type: ignore[override]
        return self._nothing


def idle_batch_hooks(callback: L.Callback) -> list[str]:
    """The per-batch hooks of ``callback`` that do nothing: those it inherits unchanged from ``Callback`` and does not
    set on itself (as ``LambdaCallback`` does), and a learning-rate monitor's per-step logging when it logs per
    epoch."""
    idle = [
        name
        for name in PER_BATCH_HOOKS
        if name not in vars(callback) and getattr(type(callback), name) is getattr(L.Callback, name)
    ]
    if isinstance(callback, LearningRateMonitor) and callback.logging_interval == "epoch":
        idle.append("on_train_batch_start")
    return idle


def skip_unused_batch_hooks(callbacks: Iterable[L.Callback]) -> None:
    """Hide each of :func:`idle_batch_hooks` from Lightning, so that it is never called. Not for the module: Lightning
    reads the signatures of its batch hooks."""
    for callback in callbacks:
        for name in idle_batch_hooks(callback):
            setattr(callback, name, None)
