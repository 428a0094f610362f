"""Loss, metrics and prediction transform for each task, built from the names typed in configs."""

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    BinaryConfusionMatrix,
    MulticlassConfusionMatrix,
)

from src.tasks import Task
from src.training.epoch_metrics import EpochMetrics
from src.training.metrics import MeanError, MeanLoss, ThresholdAccuracy, TopKAccuracy, shared_tallies

DEFAULT_LOSS = {Task.REGRESSION: "mse", Task.BINARY: "bce", Task.MULTICLASS: "cross_entropy"}


@dataclass
class LossAndMetrics:
    """What a task needs: ``loss(outputs, targets)``, metrics fed with ``to_predictions(outputs)``."""

    loss: nn.Module
    metrics: MetricCollection
    confusion: Metric | None
    to_predictions: Callable[[torch.Tensor], torch.Tensor]

    def batch_loss(self, outputs: torch.Tensor, targets: torch.Tensor, epoch: EpochMetrics) -> torch.Tensor:
        """The per-batch work of every stage, in both engines: the loss of the network's outputs, with the batch
        added to its epoch's metrics (the mean loss, the metrics and, when testing, the confusion matrix)."""
        loss = self.loss(outputs, targets)
        epoch.add(outputs, targets, loss)  # measured many batches at a time, without a host read
        return loss

    def epoch_metrics(
        self, stage: str, metrics: MetricCollection, mean_loss: MeanLoss, confusion: Metric | None = None
    ) -> EpochMetrics:
        """What :meth:`batch_loss` feeds for one stage: ``metrics`` (a clone of :attr:`metrics`) and ``mean_loss``
        measure the predictions of the outputs."""
        return EpochMetrics(stage, metrics, mean_loss, self.to_predictions, confusion)


def _loss(task: Task, loss: str | nn.Module | None, label_smoothing: float) -> nn.Module:
    """A named loss of the task, or the module a ``module.loss`` node built (``_target_: torch.nn.HuberLoss``)."""
    if loss is not None and not isinstance(loss, str | nn.Module):
        raise ValueError(f"module.loss built a {type(loss).__name__}, not a loss module such as torch.nn.HuberLoss")
    if isinstance(loss, nn.Module):
        try:
            inspect.signature(loss.forward).bind(None, None)
        except TypeError:
            raise ValueError(
                f"module.loss built a {type(loss).__name__}, whose forward does not take (outputs, targets); give "
                "its _target_ a loss such as torch.nn.HuberLoss"
            ) from None
        if label_smoothing:
            raise ValueError(
                f"module.label_smoothing={label_smoothing} configures the named cross_entropy loss; with your own "
                f"module.loss ({type(loss).__name__}) set the smoothing in that node"
            )
        return loss
    losses: dict[Task, dict[str, Callable[[], nn.Module]]] = {
        Task.REGRESSION: {"mse": nn.MSELoss, "l1": nn.L1Loss},
        Task.BINARY: {"bce": nn.BCEWithLogitsLoss},
        Task.MULTICLASS: {"cross_entropy": lambda: nn.CrossEntropyLoss(label_smoothing=label_smoothing)},
    }
    name = loss or DEFAULT_LOSS[task]
    if name not in losses[task]:
        raise ValueError(
            f"module.loss={name!r} does not fit task={task.value}; choose one of {sorted(losses[task])}, or a "
            "node such as module.loss={_target_:torch.nn.HuberLoss,delta:0.5}"
        )
    if label_smoothing and task is not Task.MULTICLASS:
        raise ValueError(f"label_smoothing={label_smoothing} only applies to multiclass tasks, not {task.value}")
    return losses[task][name]()


def default_metrics(task: str | Task, num_outputs: int) -> dict[str, Metric]:
    """Regression logs mse and mae; binary logs acc; multiclass logs acc (and top5 with more than 5 classes)."""
    task = Task.parse(task)
    if task is Task.REGRESSION:
        return {"mse": MeanError(power=2), "mae": MeanError(power=1)}
    # Accuracies updated every step in a few kernels and no host read (src/training/metrics.py); the data modules
    # check their labels once, when they load them.
    if task is Task.BINARY:
        return {"acc": ThresholdAccuracy()}
    ranks = 5 if num_outputs > 5 else 1  # top-1 and top-5 from one tally
    multiclass: dict[str, Metric] = {"acc": TopKAccuracy(1, ranks)}
    if num_outputs > 5:
        multiclass["top5"] = TopKAccuracy(5, ranks)
    return multiclass


def _metrics(task: Task, num_outputs: int, metrics: Mapping[str, Metric | None] | None) -> MetricCollection:
    """The task's default metrics with ``module.metrics`` applied: a metric is added (or replaces the default of its
    name), None removes a default."""
    chosen = default_metrics(task, num_outputs)
    for name, metric in (metrics or {}).items():
        if not str(name).isidentifier() or name == "loss":
            raise ValueError(f"module.metrics.{name}: a metric name is a plain identifier other than loss, e.g. f1")
        if metric is None:
            if chosen.pop(name, None) is None:
                raise ValueError(
                    f"module.metrics.{name}=null removes a default metric, but {name} is not one; the defaults here "
                    f"are {', '.join(default_metrics(task, num_outputs)) or 'none'}"
                )
        elif not isinstance(metric, Metric):
            raise ValueError(
                f"module.metrics.{name} built a {type(metric).__name__}, not a torchmetrics Metric; give its "
                "_target_ a metric class, e.g. torchmetrics.classification.BinaryF1Score"
            )
        else:
            chosen[name] = metric
    # Compute groups named, not found: torchmetrics would merge any metrics whose states happen to be equal after
    # the first batch (its own top-1 and top-5 accuracy on a batch where they agree).
    return MetricCollection(chosen, compute_groups=shared_tallies(chosen) or False)


def task_loss_and_metrics(
    task: str | Task,
    num_outputs: int,
    loss: str | nn.Module | None = None,
    label_smoothing: float = 0.0,
    metrics: Mapping[str, Metric | None] | None = None,
) -> LossAndMetrics:
    """The task's loss (or ``loss``, a module) and its default metrics with ``metrics`` added or removed."""
    task = Task.parse(task)
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    loss_fn, collection = _loss(task, loss, label_smoothing), _metrics(task, num_outputs, metrics)
    if task is Task.REGRESSION:
        return LossAndMetrics(loss_fn, collection, None, lambda out: out)
    if task is Task.BINARY:
        return LossAndMetrics(loss_fn, collection, BinaryConfusionMatrix(validate_args=False), torch.sigmoid)
    return LossAndMetrics(
        loss_fn, collection, MulticlassConfusionMatrix(num_outputs, validate_args=False), lambda out: out
    )
