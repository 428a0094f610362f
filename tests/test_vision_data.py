"""MNIST and CIFAR-10 data modules on tiny files in the official formats: parsing, splits, cache, errors, loaders."""

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from torch.utils.data import DataLoader

from src.datamodules.augment import Augmentation, BatchTransform
from src.datamodules.device_loader import DeviceLoader
from src.datamodules.fake_files import write_cifar10, write_mnist
from src.datamodules.image_cache import load_or_decode
from src.datamodules.readers import DataFileError, md5, verify
from src.datamodules.vision import MNISTDataModule, VisionDataModule


@pytest.fixture
def fake_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def datamodule(make_cfg, name: str, data_dir: Path, *overrides: str) -> VisionDataModule:
    cfg = make_cfg(f"data={name}", f"paths.data_dir={data_dir}", "data.verify_checksums=false", *overrides)
    data = instantiate(cfg.data)
    data.setup()
    return data


@pytest.mark.parametrize(
    ("name", "writer", "shape"), [("mnist", write_mnist, (1, 28, 28)), ("cifar10", write_cifar10, (3, 32, 32))]
)
def test_reader_returns_the_written_images_and_labels(make_cfg, fake_dir, name, writer, shape) -> None:
    written = writer(fake_dir)
    data = datamodule(make_cfg, name, fake_dir, "data.val_size=10")
    tensors = data.load_tensors()
    for split in ("train", "test"):
        images, labels = tensors[f"{split}_images"], tensors[f"{split}_labels"]
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64 and images.shape[1:] == shape
        assert np.array_equal(images.numpy().reshape(written[f"{split}_images"].shape), written[f"{split}_images"])
        assert labels.tolist() == written[f"{split}_labels"].tolist()
    train, val, test = data.splits
    assert (len(train), len(val), len(test)) == (50, 10, 20)


def test_split_is_seeded_disjoint_and_covers_the_training_files(make_cfg, fake_dir) -> None:
    write_mnist(fake_dir)
    first = datamodule(make_cfg, "mnist", fake_dir, "data.val_size=10", "seed=1")
    again = datamodule(make_cfg, "mnist", fake_dir, "data.val_size=10", "seed=1")
    other = datamodule(make_cfg, "mnist", fake_dir, "data.val_size=10", "seed=2")
    torch.testing.assert_close(first.splits[1].tensors[0], again.splits[1].tensors[0])
    assert not torch.equal(first.splits[1].tensors[0], other.splits[1].tensors[0])
    rows = torch.cat([first.splits[0].tensors[0], first.splits[1].tensors[0]]).flatten(1)
    assert len(torch.unique(rows, dim=0)) == 60


def test_val_size_zero_trains_on_every_training_image_and_holds_out_none(make_cfg, fake_dir) -> None:
    write_cifar10(fake_dir)
    data = datamodule(make_cfg, "cifar10", fake_dir, "data.val_size=0")
    train, val, test = data.splits
    assert (len(train), len(val), len(test)) == (60, 0, 20) and not data.holds_out_validation()
    assert datamodule(make_cfg, "cifar10", fake_dir, "data.val_size=1").holds_out_validation()


def test_cache_is_reused_while_sources_are_unchanged_and_rebuilt_when_they_change(tmp_path: Path) -> None:
    calls = []

    def decode() -> dict[str, torch.Tensor]:
        calls.append(1)
        return {"x": torch.arange(3, dtype=torch.uint8)}

    path = tmp_path / "cache" / "set.pt"
    assert torch.equal(load_or_decode(path, [["a", 1, 1]], decode)["x"], torch.arange(3, dtype=torch.uint8))
    load_or_decode(path, [["a", 1, 1]], decode)
    assert len(calls) == 1
    load_or_decode(path, [["a", 2, 1]], decode)
    assert len(calls) == 2
    assert [p.name for p in path.parent.iterdir()] == ["set.pt"]  # no temporary file left behind


def test_read_only_data_dir_is_read_but_never_written(make_cfg, fake_dir: Path) -> None:
    write_mnist(fake_dir)
    raw = fake_dir / "MNIST" / "raw"
    before = sorted(p.name for p in raw.iterdir())
    os.chmod(raw, stat.S_IRUSR | stat.S_IXUSR)
    try:
        data = datamodule(make_cfg, "mnist", fake_dir, "data.val_size=10")
        assert len(data.splits[2]) == 20
        assert sorted(p.name for p in raw.iterdir()) == before
    finally:
        os.chmod(raw, stat.S_IRWXU)


def test_missing_files_name_the_directory_the_files_and_the_ways_out(make_cfg, fake_dir: Path) -> None:
    with pytest.raises(DataFileError) as err:
        datamodule(make_cfg, "cifar10", fake_dir, "data.download=false")
    message = str(err.value)
    assert f"cifar10 files not found in {fake_dir / 'cifar-10-batches-py'}" in message
    assert "data_batch_1, data_batch_2" in message and "test_batch" in message
    assert "paths.data_dir=/path/to/data" in message and "data=xor" in message


def test_failed_download_leaves_no_empty_folders_behind(make_cfg, tmp_path: Path, monkeypatch) -> None:
    def offline(root: str, train: bool, download: bool) -> None:  # what torchvision does without a network
        (Path(root) / "MNIST" / "raw").mkdir(parents=True, exist_ok=True)
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(MNISTDataModule, "DOWNLOADER", staticmethod(offline))
    data_dir = tmp_path / "new" / "data"
    with pytest.raises(DataFileError, match=r"mnist files not found in .*new/data/MNIST/raw"):
        datamodule(make_cfg, "mnist", data_dir, "data.download=true")
    assert list(tmp_path.iterdir()) == []


def test_truncated_mnist_file_is_named(make_cfg, fake_dir: Path) -> None:
    write_mnist(fake_dir)
    path = fake_dir / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataFileError, match=r"train-images-idx3-ubyte.gz is not a complete gzip file"):
        datamodule(make_cfg, "mnist", fake_dir, "data.val_size=10")


def test_mnist_file_shorter_than_its_header_says_is_named(make_cfg, fake_dir: Path) -> None:
    import gzip
    import struct

    write_mnist(fake_dir)
    path = fake_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(struct.pack(">ii", 2049, 20) + bytes(15)))
    with pytest.raises(DataFileError, match=r"t10k-labels-idx1-ubyte.gz is truncated or padded: 23 bytes .* says 28"):
        datamodule(make_cfg, "mnist", fake_dir, "data.val_size=10")


def test_truncated_cifar_batch_is_named(make_cfg, fake_dir: Path) -> None:
    write_cifar10(fake_dir)
    path = fake_dir / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataFileError, match=r"data_batch_3 is not a complete CIFAR-10 batch"):
        datamodule(make_cfg, "cifar10", fake_dir, "data.val_size=10")


def test_wrong_checksum_is_named_with_both_digests(fake_dir: Path) -> None:
    write_cifar10(fake_dir)
    folder = fake_dir / "cifar-10-batches-py"
    good = md5(folder / "test_batch")
    verify(folder, {"test_batch": good})
    blob = bytearray((folder / "test_batch").read_bytes())
    blob[-10] ^= 0xFF
    (folder / "test_batch").write_bytes(bytes(blob))
    with pytest.raises(DataFileError, match=rf"test_batch is corrupted: md5 [0-9a-f]{{32}}, expected {good}"):
        verify(folder, {"test_batch": good})


def test_official_checksums_reject_files_that_are_not_the_official_ones(make_cfg, fake_dir: Path) -> None:
    write_mnist(fake_dir)
    datamodule(make_cfg, "mnist", fake_dir, "data.val_size=10")  # decoded unchecked into the cache first
    with pytest.raises(DataFileError, match=r"is corrupted: md5 .* expected f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        datamodule(make_cfg, "mnist", fake_dir, "data.val_size=10", "data.verify_checksums=true")


def epoch(loader) -> tuple[torch.Tensor, torch.Tensor]:
    batches = list(loader)
    return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])


def normalized(data: VisionDataModule, images: torch.Tensor) -> torch.Tensor:
    mean, std = torch.tensor(data.mean).view(1, -1, 1, 1), torch.tensor(data.std).view(1, -1, 1, 1)
    return (images.float() / 255 - mean) / std


def test_mnist_training_batches_are_never_flipped(make_cfg, fake_dir: Path) -> None:
    write_mnist(fake_dir)
    data = datamodule(make_cfg, "mnist", fake_dir, "data.val_size=10", "data.batch_size=7")
    assert data.augmentation is not None and not data.augmentation.flip
    loader = data.train_dataloader()
    x, y = epoch(loader)
    images, labels = data.splits[0].tensors
    order = torch.tensor(list(loader.sampler))
    torch.testing.assert_close(x, normalized(data, images[order]))
    assert torch.equal(y, labels[order])


def test_cifar_flip_mirrors_about_half_the_images_and_nothing_else(make_cfg, fake_dir: Path) -> None:
    write_cifar10(fake_dir, per_batch=40)
    data = datamodule(make_cfg, "cifar10", fake_dir, "data.val_size=10", "data.augment.crop_padding=0")
    loader = data.train_dataloader()
    x, _ = epoch(loader)
    source = normalized(data, data.splits[0].tensors[0][torch.tensor(list(loader.sampler))])
    same = torch.isclose(x, source, atol=1e-5).flatten(1).all(1)
    mirrored = torch.isclose(x, source.flip(3), atol=1e-5).flatten(1).all(1)
    assert bool((same | mirrored).all())
    assert 0.25 < mirrored.float().mean() < 0.75


def test_crop_keeps_the_shape_and_takes_a_window_of_the_padded_image(make_cfg, fake_dir: Path) -> None:
    write_cifar10(fake_dir)
    data = datamodule(make_cfg, "cifar10", fake_dir, "data.val_size=10", "data.augment.flip=false")
    loader = data.train_dataloader()
    x, _ = epoch(loader)
    source = normalized(data, data.splits[0].tensors[0][torch.tensor(list(loader.sampler))])
    assert x.shape == source.shape
    padded = torch.nn.functional.pad(source, (4,) * 4, mode="reflect")
    for out, pad in zip(x, padded, strict=True):
        windows = [pad[:, dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
        assert any(torch.allclose(out, w) for w in windows)


def test_cutout_zeroes_one_square_per_image(make_cfg, fake_dir: Path) -> None:
    write_cifar10(fake_dir)
    data = datamodule(
        make_cfg,
        "cifar10",
        fake_dir,
        "data.val_size=10",
        "data.augment.cutout=8",
        "data.augment.crop_padding=0",
        "data.augment.flip=false",
    )
    x, _ = epoch(data.train_dataloader())
    zero_pixels = (x == 0).all(1).flatten(1).sum(1)
    assert torch.all(zero_pixels == 64)


def test_evaluation_batches_are_the_normalized_images_in_order(make_cfg, fake_dir: Path) -> None:
    write_cifar10(fake_dir)
    data = datamodule(make_cfg, "cifar10", fake_dir, "data.val_size=10", "data.eval_batch_size=6")
    x, y = epoch(data.test_dataloader())
    images, labels = data.splits[2].tensors
    torch.testing.assert_close(x, normalized(data, images))
    assert torch.equal(y, labels)


def test_torchvision_loader_serves_the_same_evaluation_batches(make_cfg, fake_dir: Path) -> None:
    write_cifar10(fake_dir)
    device = datamodule(make_cfg, "cifar10", fake_dir, "data.val_size=10")
    classic = datamodule(make_cfg, "cifar10", fake_dir, "data.val_size=10", "data.loader=torchvision")
    loader = classic.test_dataloader()
    assert isinstance(loader, DataLoader) and isinstance(device.test_dataloader(), DeviceLoader)
    x_classic, y_classic = epoch(loader)
    x_device, y_device = epoch(device.test_dataloader())
    torch.testing.assert_close(x_classic, x_device)
    assert torch.equal(y_classic, y_device)


def test_torchvision_loader_augments_training_batches(make_cfg, fake_dir: Path) -> None:
    write_cifar10(fake_dir)
    data = datamodule(make_cfg, "cifar10", fake_dir, "data.val_size=10", "data.loader=torchvision")
    x, _ = epoch(data.train_dataloader())
    assert x.shape == (50, 3, 32, 32) and x.dtype == torch.float32
    assert not torch.allclose(x.sort(0).values, normalized(data, data.splits[0].tensors[0]).sort(0).values)


identity = BatchTransform(mean=[0.0], std=[1 / 255], augmentation=None)


def shards(n: int, world_size: int, shuffle: bool, epoch_number: int = 0) -> list[torch.Tensor]:
    images, labels = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1), torch.arange(n)
    result = []
    for rank in range(world_size):
        loader = DeviceLoader(images, labels, 4, identity, shuffle=shuffle, seed=0, rank=rank, world_size=world_size)
        if loader.sampler is not None:
            loader.sampler.set_epoch(epoch_number)
        result.append(epoch(loader)[1])
    return result


def test_training_shards_are_disjoint_equal_and_reshuffled_every_epoch() -> None:
    first = shards(50, 3, shuffle=True)
    assert [len(s) for s in first] == [16, 16, 16]
    assert len(torch.unique(torch.cat(first))) == 48
    second = shards(50, 3, shuffle=True, epoch_number=1)
    assert not torch.equal(torch.cat(first), torch.cat(second))


def test_evaluation_shards_cover_every_sample_exactly_once() -> None:
    parts = shards(50, 3, shuffle=False)
    assert sorted(torch.cat(parts).tolist()) == list(range(50))


def test_unknown_loader_lists_the_choices(make_cfg, fake_dir: Path) -> None:
    cfg = make_cfg("data=mnist", f"paths.data_dir={fake_dir}", "data.loader=dali")
    with pytest.raises(Exception, match=r"unknown data.loader 'dali'; choose one of \['device', 'torchvision'\]"):
        instantiate(cfg.data)


def mirrored_per_image(loader: DeviceLoader, epoch_number: int) -> dict[int, bool]:
    """Which images an epoch served mirrored: each image's left pixel holds its index, its right pixel 255."""
    loader.sampler.set_epoch(epoch_number)
    x, y = epoch(loader)
    return {int(label): bool(row[0, 0, 0] == 255) for row, label in zip(x, y, strict=True)}


def test_alternating_flip_mirrors_half_the_images_then_each_the_other_way_every_epoch() -> None:
    n = 64
    images = torch.stack([torch.tensor([[[i, 255]]], dtype=torch.uint8) for i in range(n)])
    alternating = BatchTransform(mean=[0.0], std=[1 / 255], augmentation=Augmentation(flip="alternating"))
    loader = DeviceLoader(images, torch.arange(n), 8, alternating, shuffle=True, seed=3)
    epochs = [mirrored_per_image(loader, e) for e in range(3)]
    assert 16 < sum(epochs[0].values()) < 48  # a random half
    assert all(epochs[1][i] != epochs[0][i] and epochs[2][i] == epochs[0][i] for i in range(n))
    again = DeviceLoader(images, torch.arange(n), 8, alternating, shuffle=True, seed=3)
    assert mirrored_per_image(again, 0) == epochs[0]  # seeded: a resumed run mirrors the same images


def test_alternating_flip_is_refused_by_the_torchvision_loader(make_cfg, fake_dir: Path) -> None:
    cfg = make_cfg(
        "data=cifar10", f"paths.data_dir={fake_dir}", "data.loader=torchvision", "data.augment.flip=alternating"
    )
    with pytest.raises(Exception, match=r"data.augment.flip=alternating needs data.loader=device"):
        instantiate(cfg.data)
