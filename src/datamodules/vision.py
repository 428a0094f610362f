"""MNIST and CIFAR-10: official files -> uint8 cache -> device-resident batches (or a torchvision DataLoader)."""

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import torchvision.datasets
from torch.utils.data import DataLoader, Dataset, TensorDataset

from src.datamodules.augment import Augmentation, BatchTransform, torchvision_transform
from src.datamodules.base import Splits, TensorDataModule
from src.datamodules.device_loader import DeviceLoader
from src.datamodules.image_cache import cache_path, load_or_decode, source_stats
from src.datamodules.readers import CIFAR10_FILES, MNIST_FILES, DataFileError, read_cifar10, read_mnist, verify
from src.datamodules.source_digest import data_identity
from src.errors import one_line
from src.tasks import Task

log = logging.getLogger(__name__)

LOADERS = ("device", "torchvision")


class ImageDataset(Dataset):
    """uint8 images served one at a time through torchvision transforms (the classic DataLoader path)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[index]), self.labels[index]


class VisionDataModule(TensorDataModule):
    """Shared by MNIST and CIFAR-10; subclasses name their files, checksums, reader and downloader."""

    TASK = Task.MULTICLASS
    NAME: str
    FOLDER: str  # where the files sit under data_dir, in torchvision's layout
    FILES: dict[str, tuple[str, ...]]
    CHECKSUMS: dict[str, str]
    read: Callable[[Path, str], tuple[torch.Tensor, torch.Tensor]]
    DOWNLOADER: Callable[..., Any]

    def __init__(
        self,
        *,
        data_dir: str,
        cache_dir: str,
        val_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        augment: dict[str, Any] | None = None,
        loader: str = "device",
        download: bool = True,
        verify_checksums: bool = True,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        if loader not in LOADERS:
            raise ValueError(f"unknown data.loader {loader!r}; choose one of {list(LOADERS)}")
        if val_size < 0:
            raise ValueError(
                f"data.val_size must be >= 0 (0 trains on every training image and validates on none), got {val_size}"
            )
        self.data_dir, self.cache_dir = Path(data_dir), Path(cache_dir)
        self.val_size, self.loader = val_size, loader
        self.mean, self.std = list(mean), list(std)
        channels = self.input_shape[0] if len(self.input_shape) == 3 else len(self.mean)  # else: setup refuses it
        finite = all(math.isfinite(v) for v in [*self.mean, *self.std])
        if len(self.mean) != channels or len(self.std) != channels or not finite or not all(v > 0 for v in self.std):
            raise ValueError(
                f"data.mean={self.mean} and data.std={self.std} need one finite value per image channel ({channels}), "
                "each std > 0: the per-channel statistics of the training images"
            )
        self.augmentation = Augmentation(**augment) if augment else None
        if loader == "torchvision" and self.augmentation is not None and self.augmentation.flip == "alternating":
            raise ValueError(
                "data.augment.flip=alternating needs data.loader=device (it tracks each image across epochs); "
                "use data.augment.flip=true with data.loader=torchvision"
            )
        self.download, self.verify_checksums = download, verify_checksums

    @property
    def folder(self) -> Path:
        return self.data_dir / self.FOLDER

    @property
    def file_names(self) -> list[str]:
        return [name for names in self.FILES.values() for name in names]

    def _missing_files(self) -> list[str]:
        return [name for name in self.file_names if not (self.folder / name).is_file()]

    def _ensure_files(self) -> None:
        missing = self._missing_files()
        if missing and self.download:
            log.info("Downloading %s into %s", self.NAME, self.data_dir)
            absent = [folder for folder in (self.folder, *self.folder.parents) if not folder.exists()]
            try:
                type(self).DOWNLOADER(str(self.data_dir), train=True, download=True)
                type(self).DOWNLOADER(str(self.data_dir), train=False, download=True)
            except Exception as err:  # no network, a read-only dir, a failed checksum: all end in the message below
                log.warning("Download of %s failed: %s", self.NAME, one_line(err))
            missing = self._missing_files()
            if missing:  # the folders torchvision made for a download that brought nothing go again
                for folder in absent:
                    if folder.is_dir() and not any(folder.iterdir()):
                        folder.rmdir()
        if missing:
            raise DataFileError(
                f"{self.NAME} files not found in {self.folder}: missing {', '.join(missing)}. "
                f"Put the official files there (torchvision's layout) or point at a copy with "
                f"`python train.py data={self.NAME} paths.data_dir=/path/to/data`"
                f"{'' if self.download else ' (or allow data.download=true when online)'}; "
                "data=xor and the other synthetic data sets need no files."
            )

    def _decode(self) -> dict[str, torch.Tensor]:
        if self.verify_checksums:
            verify(self.folder, self.CHECKSUMS)
        tensors = {}
        for split in ("train", "test"):
            tensors[f"{split}_images"], tensors[f"{split}_labels"] = type(self).read(self.folder, split)
        return tensors

    def load_tensors(self) -> dict[str, torch.Tensor]:
        """The whole data set as uint8 images and int64 labels, from the cache when it is current: decoded from the
        same files, and with their checksums verified when this run verifies them."""
        self._ensure_files()
        path = cache_path(self.cache_dir, self.NAME, self.folder)
        stats = [*source_stats(self.folder, self.file_names), ["checksums verified", self.verify_checksums]]
        return load_or_decode(path, stats, self._decode)

    def data_identity(self) -> str:
        """The digest of the source files' contents (remembered in the cache dir, so hashed once)."""
        self._ensure_files()
        return data_identity(self.folder, self.file_names, self.cache_dir)

    def prepare_data(self) -> None:
        """Once per machine, before the ranks set up: download, verify, decode into the cache. A module already set
        up (train.py sets up first, to refuse unsplittable data at once) has done all of it."""
        if self.splits is None:
            self.load_tensors()

    def build(self) -> Splits:
        data = self.load_tensors()
        images, labels = data["train_images"], data["train_labels"]
        if self.val_size >= len(images):
            raise ValueError(f"data.val_size={self.val_size} leaves no training images out of {len(images)}")
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.seed))
        val, train = order[: self.val_size], order[self.val_size :]
        return (
            TensorDataset(images[train], labels[train]),
            TensorDataset(images[val], labels[val]),
            TensorDataset(data["test_images"], data["test_labels"]),
        )

    def holds_out_validation(self) -> bool:
        return self.val_size > 0 or self.folds > 0

    def _loader(self, index: int, train: bool) -> DeviceLoader | DataLoader:
        images, labels = self._split(index).tensors
        augmentation = self.augmentation if train else None
        if self.loader == "torchvision":
            transform = torchvision_transform(self.mean, self.std, augmentation, self.input_shape[1:])
            return self.sharded_loader(ImageDataset(images, labels, transform), train)
        device, rank, world_size = self.placement()
        return DeviceLoader(
            images.to(device),
            labels.to(device),
            self.batch_size if train else self.eval_batch_size,
            BatchTransform(self.mean, self.std, augmentation),
            shuffle=train,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
        )

    def train_dataloader(self) -> DeviceLoader | DataLoader:
        return self._loader(0, train=True)

    def training_inputs(self, limit: int) -> torch.Tensor:
        images = self._split(0).tensors[0][:limit]
        return BatchTransform(self.mean, self.std, augmentation=None)(images, torch.Generator())

    def evaluation_loader(self, split: int) -> DeviceLoader | DataLoader:
        return self._loader(split, train=False)


class MNISTDataModule(VisionDataModule):
    NAME = "mnist"
    FOLDER = "MNIST/raw"
    FILES = MNIST_FILES
    CHECKSUMS: ClassVar[dict[str, str]] = dict(torchvision.datasets.MNIST.resources)
    read = staticmethod(read_mnist)
    DOWNLOADER = torchvision.datasets.MNIST


class CIFAR10DataModule(VisionDataModule):
    NAME = "cifar10"
    FOLDER = "cifar-10-batches-py"
    FILES = CIFAR10_FILES
    CHECKSUMS: ClassVar[dict[str, str]] = dict(
        torchvision.datasets.CIFAR10.train_list + torchvision.datasets.CIFAR10.test_list
    )
    read = staticmethod(read_cifar10)
    DOWNLOADER = torchvision.datasets.CIFAR10
