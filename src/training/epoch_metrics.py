"""A stage's epoch metrics, fed many batches at a time.

Updating the metrics on every step costs each step their kernels (a launch each, on a GPU) and torchmetrics'
Python around every update. A step instead keeps its outputs (a copy: a network replayed as CUDA graphs reuses their
memory at its next call), targets and loss on the device, and one update takes every ``UPDATE_EVERY`` batches
together, and whatever is left before the metrics are read or saved. Metrics that add up over samples give the same
values however the batches are grouped; one that weighs updates (torchmetrics' ``Running`` window) counts groups.
"""

from collections import defaultdict
from collections.abc import Callable

import torch
from torchmetrics import Metric, MetricCollection

from src.training.metrics import MeanLoss

UPDATE_EVERY = 32  # batches held between updates: their outputs take 33 MB for 1,000 classes at batch 256


class EpochMetrics:
    """The mean loss, the metrics (a collection named ``{stage}/...``) and, when testing, the confusion matrix of
    one stage. Holds references: the module (or loop) that owns the metrics moves and saves them."""

    def __init__(
        self,
        stage: str,
        metrics: MetricCollection,
        mean_loss: MeanLoss,
        to_predictions: Callable[[torch.Tensor], torch.Tensor],
        confusion: Metric | None = None,
    ) -> None:
        self.stage, self.metrics, self.mean_loss, self.confusion = stage, metrics, mean_loss, confusion
        self.to_predictions = to_predictions
        self.pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def add(self, outputs: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        """One batch: kept without its graph, and measured with the next ones."""
        self.pending.append((outputs.detach().clone(), targets, loss.detach()))
        if len(self.pending) >= UPDATE_EVERY:
            self.flush()

    @torch.no_grad()
    def flush(self) -> None:
        """Update the metrics with every batch held; before a checkpoint saves their state, and before they are read."""
        if not self.pending:
            return
        outputs, targets, losses = zip(*self.pending, strict=True)
        self.pending = []
        predictions, target = self.to_predictions(torch.cat(outputs)), torch.cat(targets)
        self.metrics.update(predictions, target)
        if self.confusion is not None:
            self.confusion.update(predictions, target.long())
        by_size: dict[int, list[torch.Tensor]] = defaultdict(list)  # an epoch's last batch may be smaller
        for batch_targets, loss in zip(targets, losses, strict=True):
            by_size[batch_targets.shape[0]].append(loss)
        for size, same_size in by_size.items():
            self.mean_loss.update(torch.stack(same_size), size)

    def compute_and_reset(self) -> dict[str, torch.Tensor]:
        """``{stage}/loss`` (the mean over samples) and the metrics over every batch added since the last reset."""
        self.flush()
        values = {f"{self.stage}/loss": self.mean_loss.compute(), **self.metrics.compute()}
        self.mean_loss.reset()
        self.metrics.reset()
        return values

    def confusion_matrix(self) -> torch.Tensor | None:
        """The confusion matrix of every batch added since its last read, which resets it."""
        if self.confusion is None:
            return None
        self.flush()
        matrix = self.confusion.compute()
        self.confusion.reset()
        return matrix
