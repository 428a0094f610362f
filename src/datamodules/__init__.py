"""``LightningDataModule``s; each data config declares ``task``, ``input_shape`` and ``num_outputs`` for the models."""

from src.datamodules.base import TensorDataModule
from src.datamodules.linear import LinearDataModule
from src.datamodules.vision import CIFAR10DataModule, MNISTDataModule
from src.datamodules.xor import XORDataModule

__all__ = ["CIFAR10DataModule", "LinearDataModule", "MNISTDataModule", "TensorDataModule", "XORDataModule"]
