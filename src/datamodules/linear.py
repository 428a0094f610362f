"""Synthetic linear regression y = w . x + b + noise (w=2, b=3: the perceptron's first lesson)."""

from collections.abc import Sequence

import torch
from torch.utils.data import TensorDataset

from src.datamodules.base import Splits, TensorDataModule, split_indices
from src.tasks import Task


class LinearDataModule(TensorDataModule):
    """``n`` points with x uniform in [-x_range, x_range]^d, split seeded into train/val/test."""

    TASK = Task.REGRESSION

    def __init__(
        self,
        *,
        weight: float | Sequence[float] = 2.0,
        bias: float = 3.0,
        noise: float = 0.1,
        n: int = 1000,
        x_range: float = 1.0,
        splits: Sequence[float] = (0.8, 0.1, 0.1),
        **common,
    ) -> None:
        super().__init__(**common)
        if len(self.input_shape) != 1 or self.num_outputs != 1:
            raise ValueError(
                f"linear data has input_shape [d] and one output, got input_shape {list(self.input_shape)} "
                f"and num_outputs {self.num_outputs}"
            )
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        dim = self.input_shape[0]
        self.weight = torch.as_tensor(weight, dtype=torch.float32).expand(dim).clone()
        self.bias, self.noise, self.n, self.x_range, self.fractions = bias, noise, n, x_range, splits

    def build(self) -> Splits:
        rng = torch.Generator().manual_seed(self.seed)
        x = (torch.rand(self.n, self.weight.numel(), generator=rng) * 2 - 1) * self.x_range
        y = x @ self.weight + self.bias + self.noise * torch.randn(self.n, generator=rng)
        data = TensorDataset(x, y.unsqueeze(1))
        parts = split_indices(self.n, self.fractions, self.seed)
        return tuple(TensorDataset(*data[idx]) for idx in parts)  # type: ignore[return-value]
