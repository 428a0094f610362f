"""CIFAR-style ResNet (He et al. 2016): 3x3 stem without max-pool, residual basic blocks, global average pool."""

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from src.models.shapes import image_shape


class BasicBlock(nn.Module):
    """Two 3x3 convs with batch norm; a 1x1 projection shortcut when the stride or width changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet-18 by default (``blocks_per_stage=[2, 2, 2, 2]``, ``base_width=64``); every stage after the first
    halves the resolution and doubles the width."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        blocks_per_stage: Sequence[int] = (2, 2, 2, 2),
        base_width: int = 64,
    ) -> None:
        super().__init__()
        if not blocks_per_stage or any(b < 1 for b in blocks_per_stage) or base_width < 1:
            raise ValueError(
                f"resnet: blocks_per_stage must be positive counts and base_width >= 1, "
                f"got {list(blocks_per_stage)} and {base_width}"
            )
        in_channels = image_shape(input_shape, "resnet", min_size=2 ** (len(blocks_per_stage) - 1))[0]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, base_width, 3, padding=1, bias=False), nn.BatchNorm2d(base_width), nn.ReLU()
        )
        stages: list[nn.Module] = []
        width = base_width
        for stage, blocks in enumerate(blocks_per_stage):
            out_width = base_width * 2**stage
            for block in range(blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                stages.append(BasicBlock(width, out_width, stride))
                width = out_width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))
