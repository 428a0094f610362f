"""Shared machinery of in-memory data sets: declared metadata checked against the data, seeded splits, loaders."""

from collections.abc import Sequence

import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from src.datamodules.resumable import ResumableDataLoader, ResumableSampler
from src.tasks import Task

Splits = tuple[TensorDataset, TensorDataset, TensorDataset]


def split_indices(n: int, fractions: Sequence[float], seed: int) -> list[torch.Tensor]:
    """Seeded random partition of ``range(n)`` into parts of the given fractions (the last part takes the rest)."""
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(
            f"splits must be three positive fractions (train, val, test) summing to 1, got {list(fractions)}"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_train, n_val = round(fractions[0] * n), round(fractions[1] * n)
    if min(n_train, n_val, n - n_train - n_val) < 1:
        raise ValueError(f"n={n} is too small for splits {list(fractions)}: every split needs at least one sample")
    return [order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]]


def fold_splits(splits: Splits, folds: int, fold: int, seed: int) -> Splits:
    """k-fold cross-validation: the training and validation splits pooled and cut into ``folds`` parts by a seeded
    permutation (the same parts for every ``fold`` of one seed); part ``fold`` validates, the others train, and the
    test split stays as it was."""
    train, val, test = splits
    inputs, targets = (torch.cat([a, b]) for a, b in zip(train.tensors, val.tensors, strict=True))
    if len(inputs) < folds:
        raise ValueError(f"data.folds={folds} is more folds than the {len(inputs)} training samples")
    parts = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(seed)).tensor_split(folds)
    kept = torch.cat([part for index, part in enumerate(parts) if index != fold])
    held = parts[fold]
    return TensorDataset(inputs[kept], targets[kept]), TensorDataset(inputs[held], targets[held]), test


def check_folds(folds: int, fold: int) -> None:
    if folds < 0 or folds == 1:
        raise ValueError(f"data.folds must be 0 (no cross-validation) or a number of folds >= 2, got {folds}")
    if folds == 0 and fold != 0:
        raise ValueError(f"data.fold={fold} needs data.folds: the number of folds to cut, e.g. data.folds=5")
    if folds and not 0 <= fold < folds:
        raise ValueError(f"data.fold={fold} is not one of data.folds={folds}: choose 0 to {folds - 1}")


class TensorDataModule(LightningDataModule):
    """Subclasses build the three splits as tensors in :meth:`build`; this class checks them and serves batches.

    ``task``, ``input_shape`` and ``num_outputs`` come from the data config, where model configs read them by
    interpolation; checking them against the built tensors keeps a config from lying about its data.
    ``folds`` (>= 2) and ``fold`` cross-validate: :func:`fold_splits` replaces the validation split by fold ``fold``
    of the training data.
    """

    TASK: Task

    def __init__(
        self,
        *,
        task: str,
        input_shape: Sequence[int],
        num_outputs: int,
        batch_size: int,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        folds: int = 0,
        fold: int = 0,
    ) -> None:
        super().__init__()
        check_folds(folds, fold)
        if Task.parse(task) is not self.TASK:
            raise ValueError(
                f"{type(self).__name__} is a {self.TASK.value} data set; its config declares task={task!r}"
            )
        if batch_size < 1 or (eval_batch_size is not None and eval_batch_size < 1):
            raise ValueError(f"batch_size must be >= 1, got batch_size={batch_size}, eval_batch_size={eval_batch_size}")
        self.task = self.TASK
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_outputs = int(num_outputs)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.folds, self.fold = folds, fold
        self.splits: Splits | None = None

    def data_identity(self) -> str:
        """What identifies the data read from files, for ``resume=auto``; data generated from the config has
        none beyond the config itself."""
        return ""

    def holds_out_validation(self) -> bool:
        """False when the data module trains on every training sample and its validation split is empty (image
        data with ``data.val_size=0``): the engines then run no validation loop at all."""
        return True

    def build(self) -> Splits:
        """Return the (train, val, test) splits as ``TensorDataset(x, y)``."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            self.splits = self.build()
            if self.folds:
                self.splits = fold_splits(self.splits, self.folds, self.fold, self.seed)
            for split in self.splits:
                if len(split):  # an empty validation split (data.val_size=0) has nothing to check
                    self._check_declared(*split.tensors)

    def _check_declared(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"data config declares input_shape {list(self.input_shape)}, the data has {list(x.shape[1:])}"
            )
        if self.task is Task.MULTICLASS:
            ok = y.dtype == torch.long and y.ndim == 1 and int(y.min()) >= 0 and int(y.max()) < self.num_outputs
        else:
            ok = y.is_floating_point() and tuple(y.shape[1:]) == (self.num_outputs,)
            ok = ok and (self.task is Task.REGRESSION or (self.num_outputs == 1 and bool(((y == 0) | (y == 1)).all())))
        if not ok:
            raise ValueError(
                f"targets of dtype {y.dtype} and shape {list(y.shape)} do not fit task={self.task.value} "
                f"with num_outputs={self.num_outputs}"
            )

    def _split(self, index: int) -> TensorDataset:
        if self.splits is None:
            self.setup()
        assert self.splits is not None
        return self.splits[index]

    def set_placement(self, device: torch.device, rank: int = 0, world_size: int = 1) -> None:
        """Where this process runs, passed down once by the engine before it asks for loaders (Lightning's through
        a callback, once it has launched the processes)."""
        self._placement = (device, rank, world_size)

    def placement(self) -> tuple[torch.device, int, int]:
        """The training device and this process's rank among ``world_size`` processes; one CPU process unless
        :meth:`set_placement` said otherwise."""
        return getattr(self, "_placement", (torch.device("cpu"), 0, 1))

    def sharded_loader(self, dataset: Dataset, train: bool) -> DataLoader:
        """Training: a seeded permutation per epoch (``sampler.set_epoch``), split into disjoint shards across
        ranks. Evaluation: every sample exactly once across ranks. Data modules shard for themselves, so both
        engines see the same batches (Lightning's ``use_distributed_sampler`` is off)."""
        _, rank, world_size = self.placement()
        # Each loader has its own generator: iterating one never draws from the global RNG, which dropout uses, so
        # a resumed run draws the same dropout masks as an uninterrupted one.
        generator = torch.Generator().manual_seed(self.seed)
        if train:
            sampler = ResumableSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=self.seed)
            return ResumableDataLoader(
                dataset,
                self.batch_size,
                sampler=sampler,
                num_workers=self.num_workers,
                persistent_workers=self.num_workers > 0,
                generator=generator,
            )
        shard = Subset(dataset, range(rank, len(dataset), world_size))
        return DataLoader(shard, self.eval_batch_size, num_workers=self.num_workers, generator=generator)

    def training_inputs(self, limit: int) -> torch.Tensor:
        """The first ``limit`` training inputs as the network sees them unaugmented, for initialisation from data."""
        return self._split(0).tensors[0][:limit]

    def evaluation_loader(self, split: int) -> DataLoader:
        """Split 0, 1 or 2 (train, val, test) in order, without augmentation."""
        return self.sharded_loader(self._split(split), train=False)

    def train_dataloader(self) -> DataLoader:
        return self.sharded_loader(self._split(0), train=True)

    def val_dataloader(self) -> DataLoader:
        return self.evaluation_loader(1)

    def test_dataloader(self) -> DataLoader:
        return self.evaluation_loader(2)
