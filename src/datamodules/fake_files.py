"""Tiny MNIST and CIFAR-10 files in the exact official formats, so the readers are tested on any machine."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

MNIST_NAMES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def write_mnist(data_dir: Path, n_train: int = 60, n_test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """IDX files (big-endian header, then raw uint8) gzipped under ``data_dir/MNIST/raw``; returns what was written."""
    rng = np.random.default_rng(seed)
    raw = data_dir / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        image_name, label_name = MNIST_NAMES[split]
        (raw / image_name).write_bytes(gzip.compress(struct.pack(">iiii", 2051, n, 28, 28) + images.tobytes()))
        (raw / label_name).write_bytes(gzip.compress(struct.pack(">ii", 2049, n) + labels.tobytes()))
        written[f"{split}_images"], written[f"{split}_labels"] = images, labels
    return written


def write_cifar10(data_dir: Path, per_batch: int = 12, n_test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """Five training batches, a test batch and batches.meta as the official pickles (bytes keys, row-major RGB)."""
    rng = np.random.default_rng(seed)
    folder = data_dir / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    parts: dict[str, list[np.ndarray]] = {"train_images": [], "train_labels": [], "test_images": [], "test_labels": []}
    names = [(f"data_batch_{i}", "train", per_batch) for i in range(1, 6)] + [("test_batch", "test", n_test)]
    for name, split, n in names:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data, b"filenames": [b"x.png"] * n}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
        parts[f"{split}_images"].append(data.reshape(n, 3, 32, 32))
        parts[f"{split}_labels"].append(np.array(labels))
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"airplane", b"automobile"], b"num_vis": 3072}, f)
    return {key: np.concatenate(value) for key, value in parts.items()}
