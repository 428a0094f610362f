"""A DataLoader Lightning (and the scratch loop) can checkpoint mid-epoch and resume at the next batch.

Lightning saves and restores any train loader with ``state_dict``/``load_state_dict``; the permutation of an epoch is
fixed by (seed, epoch), so the position in it is all the state there is. Skipping happens in the sampler, so the
batches already trained on are never loaded again.
"""

from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader, DistributedSampler


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` whose next iteration can start ``skip`` samples into the epoch's permutation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.skip = 0

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        start, self.skip = self.skip, 0
        return iter(indices[start:])


class ResumableDataLoader(DataLoader):
    """Counts the batches it served this epoch; ``load_state_dict`` makes the next epoch-iteration continue there."""

    sampler: ResumableSampler

    def __iter__(self) -> Iterator[Any]:
        # Lightning swaps in a plain sampler for some loops (trainer.overfit_batches); those start at the beginning.
        self.batches_served = getattr(self.sampler, "skip", 0) // self.batch_size
        for batch in super().__iter__():
            self.batches_served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"batches_served": getattr(self, "batches_served", 0)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if isinstance(self.sampler, ResumableSampler):
            self.sampler.skip = state["batches_served"] * self.batch_size
