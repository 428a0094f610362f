"""Multi-layer perceptron of any depth and width; images are flattened."""

from collections.abc import Sequence

import torch
from torch import nn

from src.models.activations import make_activation
from src.models.shapes import flat_features


class MLP(nn.Module):
    """``[Linear -> (BatchNorm) -> activation -> (Dropout)] * len(hidden_sizes) -> Linear``."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        hidden_sizes: Sequence[int] = (128, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if any(h < 1 for h in hidden_sizes):
            raise ValueError(f"mlp: every hidden size must be >= 1, got {list(hidden_sizes)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"mlp: dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = flat_features(input_shape, "mlp")
        for hidden in hidden_sizes:
            layers.append(nn.Linear(width, hidden, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, num_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
