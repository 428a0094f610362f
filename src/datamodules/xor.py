"""XOR: the 4-point truth table no linear model can fit, or noisy 2-D clouds around its corners."""

from collections.abc import Sequence

import torch
from torch.utils.data import TensorDataset

from src.datamodules.base import Splits, TensorDataModule, split_indices
from src.tasks import Task

CORNERS = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
LABELS = torch.tensor([[0.0], [1.0], [1.0], [0.0]])


class XORDataModule(TensorDataModule):
    """``variant=table``: train, val and test are all the truth table (there is nothing else to learn from).
    ``variant=clouds``: ``n`` points, each a random corner plus Gaussian noise of std ``noise``, split seeded."""

    TASK = Task.BINARY

    def __init__(
        self,
        *,
        variant: str = "table",
        n: int = 1000,
        noise: float = 0.15,
        splits: Sequence[float] = (0.8, 0.1, 0.1),
        **common,
    ) -> None:
        super().__init__(**common)
        if variant not in ("table", "clouds"):
            raise ValueError(f"unknown XOR variant {variant!r}; choose 'table' or 'clouds'")
        self.variant, self.n, self.noise, self.fractions = variant, n, noise, splits

    def build(self) -> Splits:
        if self.variant == "table":
            table = TensorDataset(CORNERS.clone(), LABELS.clone())
            return table, table, table
        rng = torch.Generator().manual_seed(self.seed)
        corner = torch.randint(0, 4, (self.n,), generator=rng)
        x = CORNERS[corner] + self.noise * torch.randn(self.n, 2, generator=rng)
        data = TensorDataset(x, LABELS[corner])
        return tuple(TensorDataset(*data[idx]) for idx in split_indices(self.n, self.fractions, self.seed))  # type: ignore[return-value]
