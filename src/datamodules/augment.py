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
    """``crop_padding``: pad then crop back at a random offset; ``cutout``: side of a zeroed square (0 = off).

    ``flip``: true mirrors a random half of each batch; ``alternating`` mirrors a random half of the images in the
    first epoch, then each image the other way than the epoch before (Jordan 2024): every image is seen both ways
    every two epochs, which short runs gain from. The device loader knows the images' indices and does that; the
    torchvision loader cannot, and refuses it.
    """

    crop_padding: int = 0
    padding_mode: str = "constant"
    flip: bool | str = False
    cutout: int = 0

    def __post_init__(self) -> None:
        if self.flip not in (True, False, "alternating"):
            raise ValueError(f"unknown flip {self.flip!r}; choose true, false or alternating")
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"unknown padding_mode {self.padding_mode!r}; choose one of {list(PADDING_MODES)}")
        if self.crop_padding < 0 or self.cutout < 0:
            raise ValueError(f"crop_padding and cutout must be >= 0, got {self.crop_padding} and {self.cutout}")


def random_crop_flip(
    padded: torch.Tensor, size: Sequence[int], flip: bool | torch.Tensor, rng: torch.Generator
) -> torch.Tensor:
    """Cut a ``size`` window at a random offset from each padded image, mirrored left-right for a random half
    when ``flip`` is true, or for the images a boolean ``flip`` mask marks; one ``gather`` over flat pixel indices
    does both, with no host sync."""
    batch, channels, padded_h, padded_w = padded.shape
    height, width = size
    device = padded.device
    dy = torch.randint(0, padded_h - height + 1, (batch, 1, 1), device=device, generator=rng)
    dx = torch.randint(0, padded_w - width + 1, (batch, 1, 1), device=device, generator=rng)
    cols = torch.arange(width, device=device).view(1, 1, width)
    if isinstance(flip, torch.Tensor):
        cols = torch.where(flip.view(batch, 1, 1), width - 1 - cols, cols)
    elif flip:
        mirrored = torch.rand(batch, 1, 1, device=device, generator=rng) < 0.5
        cols = torch.where(mirrored, width - 1 - cols, cols)
    rows = dy + torch.arange(height, device=device).view(1, height, 1)
    index = (rows * padded_w + dx + cols).view(batch, 1, height * width).expand(batch, channels, -1)
    return padded.flatten(2).gather(2, index).view(batch, channels, height, width)


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
    """uint8 batch -> (crop, flip) -> float, normalized -> (cutout, which leaves the mean colour).

    :meth:`prepare` pads the whole stored split once, so each batch is a single gather away from its crops.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], augmentation: Augmentation | None) -> None:
        self.mean = torch.tensor(mean).view(1, -1, 1, 1) * 255
        self.scale = 1 / (torch.tensor(std).view(1, -1, 1, 1) * 255)
        self.augmentation = augmentation

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        aug = self.augmentation
        if aug is None or aug.crop_padding == 0:
            return images
        return F.pad(images, (aug.crop_padding,) * 4, mode=aug.padding_mode)

    def __call__(
        self, images: torch.Tensor, rng: torch.Generator, mirrored: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``mirrored``: which images to flip, for ``flip=alternating`` (without it, a random half)."""
        aug = self.augmentation
        if aug is not None and (aug.crop_padding or aug.flip):
            pad = aug.crop_padding
            size = (images.shape[2] - 2 * pad, images.shape[3] - 2 * pad)
            flip = mirrored if aug.flip == "alternating" and mirrored is not None else bool(aug.flip)
            images = random_crop_flip(images, size, flip, rng)
        self.mean, self.scale = self.mean.to(images.device), self.scale.to(images.device)
        x = (images.float() - self.mean).mul_(self.scale)
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
