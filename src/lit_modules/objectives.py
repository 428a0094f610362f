"""Loss, metrics and prediction transform for each task, built from the names typed in configs."""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryConfusionMatrix,
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
)
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError

from src.tasks import Task

DEFAULT_LOSS = {Task.REGRESSION: "mse", Task.BINARY: "bce", Task.MULTICLASS: "cross_entropy"}


@dataclass
class Objective:
    """What a task needs: ``loss(outputs, targets)``, metrics fed with ``to_predictions(outputs)``."""

    loss: nn.Module
    metrics: MetricCollection
    confusion: Metric | None
    to_predictions: Callable[[torch.Tensor], torch.Tensor]


def _loss(task: Task, name: str | None, label_smoothing: float) -> nn.Module:
    losses: dict[Task, dict[str, Callable[[], nn.Module]]] = {
        Task.REGRESSION: {"mse": nn.MSELoss, "l1": nn.L1Loss},
        Task.BINARY: {"bce": nn.BCEWithLogitsLoss},
        Task.MULTICLASS: {"cross_entropy": lambda: nn.CrossEntropyLoss(label_smoothing=label_smoothing)},
    }
    name = name or DEFAULT_LOSS[task]
    if name not in losses[task]:
        raise ValueError(f"loss {name!r} does not fit task={task.value}; choose one of {sorted(losses[task])}")
    if label_smoothing and task is not Task.MULTICLASS:
        raise ValueError(f"label_smoothing={label_smoothing} only applies to multiclass tasks, not {task.value}")
    return losses[task][name]()


def make_objective(
    task: str | Task, num_outputs: int, loss: str | None = None, label_smoothing: float = 0.0
) -> Objective:
    """Regression logs mse and mae; binary logs acc; multiclass logs acc (and top5 with more than 5 classes)."""
    task = Task.parse(task)
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    loss_fn = _loss(task, loss, label_smoothing)
    if task is Task.REGRESSION:
        metrics = MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()})
        return Objective(loss_fn, metrics, None, lambda out: out)
    # validate_args=False: checking the labels of every batch reads them on the host (a GPU sync per step); the data
    # modules check their labels once, when they load them.
    if task is Task.BINARY:
        metrics = MetricCollection({"acc": BinaryAccuracy(validate_args=False)})
        return Objective(loss_fn, metrics, BinaryConfusionMatrix(validate_args=False), torch.sigmoid)
    multiclass: dict[str, Metric] = {"acc": MulticlassAccuracy(num_outputs, average="micro", validate_args=False)}
    if num_outputs > 5:
        multiclass["top5"] = MulticlassAccuracy(num_outputs, top_k=5, average="micro", validate_args=False)
    confusion = MulticlassConfusionMatrix(num_outputs, validate_args=False)
    return Objective(loss_fn, MetricCollection(multiclass), confusion, lambda out: out)
