"""The metrics of an epoch interrupted mid-way, in a run of several processes.

Each process measures its own shard of the batches, and one process writes the checkpoint. So the checkpoint
holds every process's metric states reduced into one (sums added, lists joined, minima and maxima taken, by each
state's own torchmetrics reduction), and on resuming only rank 0 takes them back; the others start from empty
states. The epoch's values, reduced over the processes when it ends, then count every batch once, as an
uninterrupted run does.
"""

import warnings
from contextlib import ExitStack

import torch
from torch import nn
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat, dim_zero_max, dim_zero_min, dim_zero_sum

# Reductions whose result, reduced again with more processes' updates, is what one reduction of all would give. A
# mean (or a state stacked per process) is not: such a metric keeps rank 0's part of the interrupted epoch alone.
COMPOSABLE = (dim_zero_sum, dim_zero_cat, dim_zero_min, dim_zero_max)


def gathered_state_dict(module: nn.Module, prefix: str = "") -> dict[str, torch.Tensor | list[torch.Tensor]]:
    """``module.state_dict(prefix=prefix)`` with the state of each metric in it reduced over every process (as it
    is in a run of one process). Every process must call it, at the same point."""
    metrics = {name: m for name, m in module.named_modules(prefix=prefix.rstrip(".")) if isinstance(m, Metric)}
    with ExitStack() as synced:
        for name, metric in metrics.items():
            if all(metric._reductions[state] in COMPOSABLE for state in metric._defaults):
                synced.enter_context(metric.sync_context())
            elif torch.distributed.is_available() and torch.distributed.is_initialized():
                warnings.warn(
                    f"metric {name or type(metric).__name__} has a state that does not add up over processes: a run "
                    "resumed in the middle of an epoch measures that epoch's part before the stop on rank 0 only",
                    stacklevel=2,
                )
        state = module.state_dict(prefix=prefix)
    for name, metric in metrics.items():  # a joined list is saved as one tensor: back into the list it loads into
        lists = [f"{name}.{attr}" if name else attr for attr, d in metric._defaults.items() if isinstance(d, list)]
        for key in lists:
            if isinstance(state.get(key), torch.Tensor):
                state[key] = [state[key]]
    return state
