"""The patch-whitening stem: computed from the data, it decorrelates the patches it sees, and stays frozen."""

import pytest
import torch
from torch.nn import functional as F

from src.models import SpeedrunNet
from src.models.whitening import PatchWhitening


def correlated_images(n: int = 64) -> torch.Tensor:
    """Smooth, colour-correlated images: neighbouring pixels and channels far from independent."""
    noise = torch.randn(n, 3, 18, 18, generator=torch.Generator().manual_seed(0))
    smooth = F.avg_pool2d(noise, 3, stride=1)  # 16 x 16
    mixing = torch.tensor([[1.0, 0.5, 0.2], [0.5, 1.0, 0.5], [0.2, 0.5, 1.0]])
    return torch.einsum("dc,nchw->ndhw", mixing, smooth) * 3


def patch_second_moment(outputs: torch.Tensor) -> torch.Tensor:
    flat = outputs.permute(0, 2, 3, 1).reshape(-1, outputs.shape[1])
    return flat.T @ flat / len(flat)


def test_whitening_filters_decorrelate_the_patches_to_unit_variance() -> None:
    images = correlated_images()
    before = patch_second_moment(images.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 1, 4, 5, 2, 3).flatten(1, 3))
    assert (before - torch.diag(before.diag())).abs().max() > 0.5  # far from white before
    layer = PatchWhitening(in_channels=3)
    layer.init_from_data(images)
    assert layer.out_channels == 24
    half = layer.weight[:12]
    torch.testing.assert_close(layer.weight[12:], -half)
    moment = patch_second_moment(F.conv2d(images, half))
    # decorrelated; each variance is eigenvalue / (eigenvalue + eps), just under 1
    torch.testing.assert_close(moment, torch.diag(moment.diag()), atol=1e-4, rtol=0)
    assert moment.diag().min() > 0.95 and moment.diag().max() < 1
    assert not layer.bias.any()


def test_whitened_stem_stays_frozen_while_its_bias_and_the_rest_train() -> None:
    net = SpeedrunNet((3, 16, 16), 10, widths=[8, 8], whiten_stem=True)
    images = correlated_images(16)
    net.init_from_data(images)
    stem = net.features[0]
    weight = stem.weight.clone()
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    F.cross_entropy(net(images), torch.arange(16) % 10).backward()
    optimizer.step()
    torch.testing.assert_close(stem.weight, weight, rtol=0, atol=0)
    assert stem.bias.abs().sum() > 0
    assert net.data_init_samples == 5000 and SpeedrunNet((3, 16, 16), 10, widths=[8]).data_init_samples == 0


def test_whitened_stem_names_the_stem_width_it_needs() -> None:
    with pytest.raises(ValueError, match=r"for 1-channel images; set stem_width=8, not 24"):
        SpeedrunNet((1, 28, 28), 10, widths=[8], whiten_stem=True)
