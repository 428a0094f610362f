"""Readers for the official MNIST and CIFAR-10 files, straight from a possibly read-only directory.

torchvision's own MNIST class extracts the ``.gz`` files next to them; reading the IDX and pickle formats here
keeps ``paths.data_dir`` untouched, and checks every file's structure (and md5 where known) before use.
"""

import gzip
import hashlib
import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from src.errors import ConfigError

ImagesAndLabels = tuple[torch.Tensor, torch.Tensor]

IDX_IMAGES, IDX_LABELS = 2051, 2049  # magic numbers of the IDX format
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
CIFAR10_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}


class DataFileError(ConfigError):
    """A data file that is missing, truncated or corrupted; the message names the file."""


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(folder: Path, checksums: Mapping[str, str]) -> None:
    """Compare each named file's md5 with the expected one (a wrong checksum means never training on it)."""
    for name, expected in checksums.items():
        actual = md5(folder / name)
        if actual != expected:
            raise DataFileError(
                f"{folder / name} is corrupted: md5 {actual}, expected {expected}; delete it and download it again"
            )


def _read_idx(path: Path, magic: int) -> np.ndarray:
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as err:
        raise DataFileError(f"{path} is not a complete gzip file ({err}); delete it and download it again") from None
    dims = 3 if magic == IDX_IMAGES else 1
    header = np.frombuffer(raw, dtype=">i4", count=1 + dims) if len(raw) >= 4 * (1 + dims) else None
    if header is None or header[0] != magic:
        raise DataFileError(f"{path} is not an IDX file of magic number {magic}")
    shape = tuple(int(d) for d in header[1:])
    expected = 4 * (1 + dims) + int(np.prod(shape))
    if len(raw) != expected:
        raise DataFileError(f"{path} is truncated or padded: {len(raw)} bytes decompressed, its header says {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 * (1 + dims)).reshape(shape)


def read_mnist(raw_dir: Path, split: str) -> ImagesAndLabels:
    """Images as uint8 ``(N, 1, 28, 28)``, labels as int64 ``(N,)``."""
    image_file, label_file = MNIST_FILES[split]
    images = _read_idx(raw_dir / image_file, IDX_IMAGES)
    labels = _read_idx(raw_dir / label_file, IDX_LABELS)
    if len(images) != len(labels):
        raise DataFileError(f"{raw_dir}: {len(images)} images in {image_file} but {len(labels)} labels in {label_file}")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def _read_cifar_batch(path: Path) -> ImagesAndLabels:
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")  # the official format is a pickle; only read trusted copies
        data, labels = batch[b"data"], batch[b"labels"]
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as err:
        raise DataFileError(f"{path} is not a complete CIFAR-10 batch ({type(err).__name__}: {err})") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataFileError(f"{path}: expected uint8 data of shape (N, 3072) with N labels, got {data.shape}")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.tensor(labels, dtype=torch.int64)


def read_cifar10(batch_dir: Path, split: str) -> ImagesAndLabels:
    """Images as uint8 ``(N, 3, 32, 32)``, labels as int64 ``(N,)``."""
    parts = [_read_cifar_batch(batch_dir / name) for name in CIFAR10_FILES[split]]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
