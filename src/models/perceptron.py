"""The single linear layer: the classic first model, which learns y = 2x + 3 exactly."""

from collections.abc import Sequence

import torch
from torch import nn

from src.models.shapes import flat_features


class Perceptron(nn.Module):
    """One ``nn.Linear`` on the flattened input."""

    def __init__(self, input_shape: Sequence[int], num_outputs: int) -> None:
        super().__init__()
        self.linear = nn.Linear(flat_features(input_shape, "perceptron"), num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))
