"""A loader for data sets that fit in device memory: batches are index slices of one uint8 tensor.

One ``index_select`` and a few batched ops per batch replace a DataLoader's per-image Python, collation and
host-to-device copies; that is where the speed comes from (see ``benchmarks/loader_throughput.py``).
"""

from collections.abc import Iterator

import torch
from torch.utils.data import DistributedSampler

from src.datamodules.augment import BatchTransform

Batch = tuple[torch.Tensor, torch.Tensor]


class DeviceLoader:
    """Iterates ``(transform(images[idx]), labels[idx])`` over this rank's share of the samples; the transform
    prepares the stored images once (padding them for random crops).

    Training: a fresh seeded permutation every epoch, split into disjoint equal shards across ranks
    (``DistributedSampler`` with ``drop_last``; Lightning calls ``sampler.set_epoch``). Evaluation: every sample
    exactly once across ranks, in order.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        transform: BatchTransform,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.images, self.labels = transform.prepare(images), labels
        self.batch_size = batch_size
        self.transform = transform
        # Lightning treats loaders by duck typing: it calls ``sampler.set_epoch`` every epoch and reads
        # ``batch_sampler``, so both names exist here with DataLoader's meaning.
        self.batch_sampler = None
        self.sampler: DistributedSampler | None = None
        if shuffle:
            self.sampler = DistributedSampler(
                range(len(images)), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True
            )
        self.eval_indices = torch.arange(rank, len(images), world_size, device=images.device)
        self.seed, self.rank = seed, rank
        self.rng = torch.Generator(device=images.device)
        self.batches_served = 0
        self._skip = 0
        self.first_flips = None  # flip=alternating: which images the first epoch mirrors, the same on every rank
        if transform.augmentation is not None and transform.augmentation.flip == "alternating":
            draws = torch.Generator().manual_seed(seed)
            self.first_flips = (torch.rand(len(images), generator=draws) < 0.5).to(images.device)

    def indices(self) -> torch.Tensor:
        if self.sampler is None:
            return self.eval_indices
        return torch.tensor(list(self.sampler), device=self.images.device)

    def __len__(self) -> int:
        count = len(self.sampler) if self.sampler is not None else len(self.eval_indices)
        return -(-count // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        # Augmentation randomness is keyed by (seed, rank, epoch, batch): a run resumed at any batch draws what an
        # uninterrupted one would.
        epoch = self.sampler.epoch if self.sampler is not None else 0
        self.batches_served, self._skip = self._skip, 0
        for chunk in self.indices().split(self.batch_size)[self.batches_served :]:
            self.rng.manual_seed(hash((self.seed, self.rank, epoch, self.batches_served)) % 2**63)
            self.batches_served += 1
            mirrored = self.first_flips[chunk] ^ bool(epoch % 2) if self.first_flips is not None else None
            yield self.transform(self.images[chunk], self.rng, mirrored), self.labels[chunk]

    # Lightning saves and restores loaders that have these two methods, so a mid-epoch checkpoint resumes exactly.
    def state_dict(self) -> dict[str, int]:
        return {"batches_served": self.batches_served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """The next iteration starts after the batches already served in this epoch."""
        self._skip = state["batches_served"]
