"""Every model that takes images trains on MNIST and CIFAR-10 through train.py; the real files when present."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from src.datamodules.fake_files import write_cifar10, write_mnist
from tests.conftest import REAL_DATA_DIR, needs_cifar10, needs_mnist, read_result
from train import train

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("data", ["mnist", "cifar10"])
@pytest.mark.parametrize("model", ["perceptron", "two_layer", "mlp", "cnn", "resnet"])
def test_every_model_runs_on_image_data(make_cfg, tmp_path: Path, model: str, data: str) -> None:
    (write_mnist if data == "mnist" else write_cifar10)(tmp_path / "data")
    cfg = make_cfg(
        f"model={model}",
        f"data={data}",
        f"paths.data_dir={tmp_path / 'data'}",
        "data.verify_checksums=false",
        "data.val_size=10",
        "data.batch_size=8",
        "data.eval_batch_size=8",
        "debug=fast_dev_run",
        "logger=none",
    )
    _, metrics = train(cfg)
    assert 0.0 <= metrics["test/acc"] <= 1.0 and torch.isfinite(torch.tensor(metrics["test/loss"]))
    assert read_result(cfg)["status"] == "completed"


def real(make_cfg, name: str):
    cfg = make_cfg(f"data={name}", f"paths.data_dir={REAL_DATA_DIR}", "data.download=false")
    data = instantiate(cfg.data)
    data.setup()
    return data


@needs_mnist
def test_real_mnist_has_70000_images_with_the_known_label_counts(make_cfg) -> None:
    tensors = real(make_cfg, "mnist").load_tensors()
    assert tensors["train_images"].shape == (60000, 1, 28, 28) and tensors["test_images"].shape == (10000, 1, 28, 28)
    assert torch.bincount(tensors["train_labels"]).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(tensors["test_labels"]).tolist() == MNIST_TEST_COUNTS


@needs_cifar10
def test_real_cifar10_has_60000_images_balanced_over_10_classes(make_cfg) -> None:
    data = real(make_cfg, "cifar10")
    tensors = data.load_tensors()
    assert tensors["train_images"].shape == (50000, 3, 32, 32) and tensors["test_images"].shape == (10000, 3, 32, 32)
    assert torch.bincount(tensors["train_labels"]).tolist() == [5000] * 10
    assert torch.bincount(tensors["test_labels"]).tolist() == [1000] * 10
    assert [len(s) for s in data.splits] == [45000, 5000, 10000]


@needs_mnist
def test_short_real_mnist_run_learns(make_cfg) -> None:
    cfg = make_cfg(
        "experiment=mnist_mlp",
        f"paths.data_dir={REAL_DATA_DIR}",
        "data.download=false",
        "logger=none",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=100",
    )
    _, metrics = train(cfg)
    assert metrics["test/acc"] > 0.9
