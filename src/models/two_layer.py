"""Linear -> activation -> Linear: with ``activation=identity`` it collapses to one linear map (cannot learn XOR)."""

from collections.abc import Sequence

import torch
from torch import nn

from src.models.activations import make_activation
from src.models.shapes import flat_features


class TwoLayerNet(nn.Module):
    """Two linear layers around one activation, on the flattened input."""

    def __init__(
        self, input_shape: Sequence[int], num_outputs: int, hidden_size: int = 8, activation: str = "relu"
    ) -> None:
        super().__init__()
        if hidden_size < 1:
            raise ValueError(f"two_layer: hidden_size must be >= 1, got {hidden_size}")
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat_features(input_shape, "two_layer"), hidden_size),
            make_activation(activation),
            nn.Linear(hidden_size, num_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
