"""Metrics cheap enough to update on every training step: a handful of kernels each, and no host sync.

On a GPU a small kernel costs its launch, so what a step launches is its cost. torchmetrics' ``MulticlassAccuracy``
one-hot encodes each batch (about 35 kernels a step for top-5, 16 for top-1) and ``MeanMetric`` broadcasts a weight
per sample (8), and ``BinaryAccuracy`` checks whether its inputs are logits (6); these give the same values in 6
kernels for top-1 and top-5 together, 5 for binary accuracy or a mean error and 2 for the mean loss, and keep
torchmetrics' ``Metric`` machinery: states summed across processes, reset, saved in checkpoints. Their states
change in place: assigning an attribute of a ``Metric`` (an ``nn.Module``) costs microseconds of Python a step.
"""

from collections import defaultdict
from collections.abc import Mapping

import torch
from torchmetrics import Metric


class TopKAccuracy(Metric):
    """The fraction of samples whose target class is among the ``top_k`` highest scores: torchmetrics'
    ``MulticlassAccuracy(average="micro", top_k=top_k)``, but for which of exactly tied scores ranks first.

    It tallies where each target ranked among the ``ranks`` highest scores, so accuracies of different ``top_k`` with
    the same ``ranks`` hold the same state, and a ``MetricCollection`` whose compute group names them (see
    :func:`shared_tallies`) updates that state once for all of them.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, top_k: int = 1, ranks: int | None = None) -> None:
        super().__init__()
        self.top_k, self.ranks = top_k, ranks or top_k
        if not 1 <= top_k <= self.ranks:
            raise ValueError(f"top_k must be between 1 and ranks, got top_k={top_k}, ranks={self.ranks}")
        self.add_state("hits", torch.zeros(self.ranks, dtype=torch.long), dist_reduce_fx="sum")  # target i-th
        self.add_state("total", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, scores: torch.Tensor, target: torch.Tensor) -> None:
        ranked = scores.topk(self.ranks, dim=1).indices
        self.hits.add_((ranked == target.unsqueeze(1)).sum(dim=0))
        self.total.add_(len(target))

    def compute(self) -> torch.Tensor:
        return self.hits[: self.top_k].sum() / self.total


class ThresholdAccuracy(Metric):
    """The fraction of binary targets matched by probabilities above ``threshold``: torchmetrics'
    ``BinaryAccuracy`` on probabilities, without its check of whether they are logits (a host read on the CPU, six
    kernels on a GPU)."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.threshold = threshold
        self.add_state("correct", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, probabilities: torch.Tensor, target: torch.Tensor) -> None:
        self.correct.add_(((probabilities > self.threshold) == target).sum())
        self.total.add_(target.numel())

    def compute(self) -> torch.Tensor:
        return self.correct / self.total


class MeanError(Metric):
    """The mean of ``|prediction - target| ** power`` over every element: torchmetrics' ``MeanAbsoluteError``
    (power 1) and ``MeanSquaredError`` (power 2), without their shape checks (the loss has made them)."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, power: int) -> None:
        super().__init__()
        if power not in (1, 2):
            raise ValueError(f"power must be 1 (absolute error) or 2 (squared error), got {power}")
        self.power = power
        self.add_state("error", torch.zeros(()), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, predictions: torch.Tensor, target: torch.Tensor) -> None:
        difference = predictions - target
        self.error.add_((difference.abs() if self.power == 1 else difference.square()).sum())
        self.total.add_(target.numel())

    def compute(self) -> torch.Tensor:
        return self.error / self.total


def shared_tallies(metrics: Mapping[str, Metric]) -> list[list[str]]:
    """torchmetrics compute groups: the names of the :class:`TopKAccuracy` metrics that tally the same ranks."""
    groups: dict[int, list[str]] = defaultdict(list)
    for name, metric in metrics.items():
        if isinstance(metric, TopKAccuracy):
            groups[metric.ranks].append(name)
    return [names for names in groups.values() if len(names) > 1]


class MeanLoss(Metric):
    """The mean of a batch-mean loss over every sample seen: each batch weighs by its size, so an epoch's last,
    smaller batch counts for what it holds."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.zeros(()), dist_reduce_fx="sum")
        self.add_state("samples", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, losses: torch.Tensor, batch_size: int) -> None:
        """``losses``: the mean loss of one batch of ``batch_size`` samples, or a 1-D tensor of several such."""
        self.total.add_(losses.sum(), alpha=batch_size)  # no graph: torchmetrics runs update without autograd
        self.samples.add_(batch_size * losses.numel())

    def compute(self) -> torch.Tensor:
        return self.total / self.samples
