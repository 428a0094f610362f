"""The metrics of an epoch interrupted mid-way, in a run of several processes.

Each process measures its own shard of the batches, and one process writes the checkpoint. So the checkpoint
holds every process's metric states reduced into one (sums added, lists joined, by each state's own torchmetrics
reduction), and on resuming only rank 0 takes them back; the others start from empty states. The epoch's values,
reduced over the processes when it ends, then count every batch once, as an uninterrupted run does.
"""

from contextlib import ExitStack

import torch
from torch import nn
from torchmetrics import Metric


def gathered_state_dict(module: nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    """``module.state_dict(prefix=prefix)`` with the state of each metric in it reduced over every process (as it
    is in a run of one process). Every process must call it, at the same point."""
    with ExitStack() as synced:
        for metric in module.modules():
            if isinstance(metric, Metric):
                synced.enter_context(metric.sync_context())
        return module.state_dict(prefix=prefix)
