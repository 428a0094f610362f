"""Batched image augmentation on whatever device the batch is on: no per-image Python, no PIL.

The same pipeline exists as torchvision transforms (:func:`torchvision_transform`) for the DataLoader path, so the
two loaders can be compared on equal work.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F
from torchvision.transforms import v2

PADDING_MODES = ("constant", "reflect", "replicate", "circular")


@dataclass(frozen=True)
class Augmentation:
    """``crop_padding``: pad then crop back at a random offset; ``cutout``: side of a zeroed square (0 = off)."""

    crop_padding: int = 0
    padding_mode: str = "constant"
    flip: bool = False
    cutout: int = 0

    def __post_init__(self) -> None:
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"unknown padding_mode {self.padding_mode!r}; choose one of {list(PADDING_MODES)}")
        if self.crop_padding < 0 or self.cutout < 0:
            raise ValueError(f"crop_padding and cutout must be >= 0, got {self.crop_padding} and {self.cutout}")


def random_crop(x: torch.Tensor, padding: int, mode: str, rng: torch.Generator) -> torch.Tensor:
    """Pad every image by ``padding`` and cut out a window of the original size at a random offset per image."""
    if padding == 0:
        return x
    batch, _, height, width = x.shape
    padded = F.pad(x, (padding,) * 4, mode=mode)
    dy, dx = (torch.randint(0, 2 * padding + 1, (2, batch, 1), device=x.device, generator=rng)).unbind(0)
    rows = (dy + torch.arange(height, device=x.device))[:, :, None]
    cols = (dx + torch.arange(width, device=x.device))[:, None, :]
    # Advanced indexing gathers each image's window at once; the result is (B, H, W, C).
    return padded[torch.arange(batch, device=x.device)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)


def random_flip(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Mirror a random half of the images left to right."""
    flip = torch.rand(len(x), device=x.device, generator=rng) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def random_cutout(x: torch.Tensor, size: int, rng: torch.Generator) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square inside each image at a random place (DeVries & Taylor 2017)."""
    batch, _, height, width = x.shape
    top = torch.randint(0, height - size + 1, (batch, 1, 1), device=x.device, generator=rng)
    left = torch.randint(0, width - size + 1, (batch, 1, 1), device=x.device, generator=rng)
    rows = torch.arange(height, device=x.device)[None, :, None]
    cols = torch.arange(width, device=x.device)[None, None, :]
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return x.masked_fill(inside[:, None], 0.0)


class BatchTransform:
    """uint8 batch -> float in [0, 1] -> (crop, flip) -> normalize -> (cutout, which leaves the mean colour)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], augmentation: Augmentation | None) -> None:
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)
        self.augmentation = augmentation

    def __call__(self, images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        x = images.float().div_(255)
        aug = self.augmentation
        if aug is not None:
            x = random_crop(x, aug.crop_padding, aug.padding_mode, rng)
            if aug.flip:
                x = random_flip(x, rng)
        x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        if aug is not None and aug.cutout:
            x = random_cutout(x, aug.cutout, rng)
        return x


def torchvision_transform(
    mean: Sequence[float], std: Sequence[float], augmentation: Augmentation | None, size: Sequence[int]
) -> v2.Compose:
    """The per-image equivalent of :class:`BatchTransform` for the torchvision DataLoader path."""
    steps: list[v2.Transform] = []
    if augmentation is not None:
        if augmentation.crop_padding:
            steps.append(
                v2.RandomCrop(list(size), padding=augmentation.crop_padding, padding_mode=augmentation.padding_mode)
            )
        if augmentation.flip:
            steps.append(v2.RandomHorizontalFlip())
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    if augmentation is not None and augmentation.cutout:
        area = augmentation.cutout**2 / (size[0] * size[1])
        steps.append(v2.RandomErasing(p=1.0, scale=(area, area), ratio=(1.0, 1.0), value=0))
    return v2.Compose(steps)
