"""A small VGG-style conv net: blocks of (conv -> batch norm -> activation) x k -> max-pool, then an MLP head."""

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from src.models.activations import make_activation
from src.models.shapes import image_shape


def conv_block(in_channels: int, out_channels: int, convs: int, activation: str) -> nn.Sequential:
    """``convs`` 3x3 convolutions with batch norm and activation, then a 2x2 max-pool halving the resolution."""
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [
            nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            make_activation(activation),
        ]
    layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class CNN(nn.Module):
    """Conv blocks, one per entry of ``channels``, then dropout -> Linear(hidden) -> activation -> Linear."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        channels: Sequence[int] = (32, 64, 128),
        convs_per_block: int = 1,
        hidden_size: int = 256,
        activation: str = "relu",
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        if len(channels) < 1 or convs_per_block < 1:
            raise ValueError(
                f"cnn: needs >= 1 block of >= 1 conv, got channels={list(channels)}, convs_per_block={convs_per_block}"
            )
        in_channels, height, width = image_shape(input_shape, "cnn", min_size=2 ** len(channels))
        widths = [in_channels, *channels]
        self.features = nn.Sequential(
            *(conv_block(c_in, c_out, convs_per_block, activation) for c_in, c_out in itertools.pairwise(widths))
        )
        side_h, side_w = height >> len(channels), width >> len(channels)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels[-1] * side_h * side_w, hidden_size),
            make_activation(activation),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, num_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
