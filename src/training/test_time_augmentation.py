"""Test-time augmentation, one implementation for the validation and testing of both engines."""

from collections.abc import Callable

import torch
from torch.nn import functional as F


def evaluation_outputs(
    net: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, flip: bool, shift: int = 0
) -> torch.Tensor:
    """``net(x)``, or a weighted mean of its outputs over views of the images (airbench-style test-time augmentation).

    ``flip``: the images and their mirror images, equally weighted; a few tenths of a percent of accuracy where
    classes are mirror-symmetric (CIFAR-10). ``shift``: those views count half, and the same views translated by
    ``shift`` pixels (reflect-padded) along the diagonal, one way and the other, a quarter each. All views go
    through the network as one batch: one launch per layer instead of up to six.
    """
    if not flip and not shift:
        return net(x)
    if x.ndim != 4:
        raise ValueError(f"test-time augmentation needs (N, C, H, W) image batches, got shape {tuple(x.shape)}")
    views = [x, x.flip(-1)] if flip else [x]
    weights = [1 / len(views)] * len(views)
    if shift:
        height, width = x.shape[-2:]
        padded = F.pad(torch.cat(views), (shift,) * 4, mode="reflect")
        views += [padded[..., :height, :width], padded[..., 2 * shift :, 2 * shift :]]
        weights = [w / 2 for w in weights] + [1 / (4 * len(weights))] * (2 * len(weights))
    # (views, N, ...), in the order of ``weights``: each shifted chunk holds every base view once
    outputs = net(torch.cat(views)).unflatten(0, (-1, len(x)))
    return sum(weight * view_outputs for weight, view_outputs in zip(weights, outputs, strict=True))
