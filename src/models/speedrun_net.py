"""The airbench-style speedrun net (Jordan 2024, "94% on CIFAR-10 in 3.29 seconds"): a conv-BN-GELU stem, then
groups of conv -> max-pool -> BN -> GELU -> conv -> BN -> GELU, a global max-pool and a linear head.

Small and shallow, so that an epoch of CIFAR-10 takes a fraction of a second on a GPU; the options below are
what lets it reach 94% in about ten epochs.
"""

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from src.models.shapes import image_shape
from src.models.whitening import PatchWhitening


class SpeedrunBatchNorm(nn.BatchNorm2d):
    """BatchNorm whose scale can be fixed at 1 and whose bias trains ``bias_lr_scale`` times faster under SGD.

    The bias is stored divided by ``sqrt(bias_lr_scale)``: an SGD step on the stored value moves the bias in use
    ``bias_lr_scale`` times as far, while weight decay shrinks both alike. This is airbench's separate learning rate
    for BatchNorm biases, without a parameter group that the optimizer config would have to know about.
    """

    def __init__(self, channels: int, momentum: float, learn_scale: bool, bias_lr_scale: float) -> None:
        super().__init__(channels, momentum=momentum)
        self.weight.requires_grad_(learn_scale)
        self.bias_multiplier = bias_lr_scale**0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.bias_multiplier
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, bias, self.training, self.momentum, self.eps
        )


def conv3x3(in_channels: int, out_channels: int, dirac: bool) -> nn.Conv2d:
    """``dirac``: the first ``in_channels`` filters pass their input channel through unchanged, the rest keep the
    default init, so a deep stack starts close to a shallow one and trains from the first step."""
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
    if dirac:
        nn.init.dirac_(conv.weight.data[:in_channels])
    return conv


class SpeedrunNet(nn.Module):
    """A stem of ``stem_width`` channels, then one group per entry of ``widths``, each halving the resolution.

    The stem is a 3x3 convolution, BatchNorm and GELU; with ``whiten_stem`` it is a 2x2 patch-whitening convolution
    (frozen weights, a trained bias) and GELU, whose filters :meth:`init_from_data` computes from the first
    ``data_init_samples`` training images (``train.py`` calls it before training; checkpoints carry the filters).

    ``batchnorm_momentum`` uses PyTorch's convention: 0.4 keeps the running statistics of a ten-epoch run close to
    the last steps' weights. ``learn_batchnorm_scale=False`` fixes every BatchNorm scale at 1 (the next convolution
    can rescale anyway). ``logit_temperature`` (9) divides the head's outputs: the first predictions are
    near uniform and the head learns slower than the convolutions under the run's high learning rate.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        widths: Sequence[int] = (64, 256, 256),
        stem_width: int = 24,
        batchnorm_momentum: float = 0.4,
        learn_batchnorm_scale: bool = False,
        bias_lr_scale: float = 64.0,
        dirac_init: bool = True,
        logit_temperature: float = 9.0,
        whiten_stem: bool = False,
    ) -> None:
        super().__init__()
        if not widths or min(*widths, stem_width) < 1 or bias_lr_scale <= 0 or logit_temperature <= 0:
            raise ValueError(
                f"speedrun_net: widths and stem_width must be >= 1, bias_lr_scale and logit_temperature > 0; got "
                f"widths={list(widths)}, stem_width={stem_width}, bias_lr_scale={bias_lr_scale}, "
                f"logit_temperature={logit_temperature}"
            )
        in_channels = image_shape(input_shape, "speedrun_net", min_size=2 ** len(widths) + whiten_stem)[0]

        def norm(channels: int) -> SpeedrunBatchNorm:
            return SpeedrunBatchNorm(channels, batchnorm_momentum, learn_batchnorm_scale, bias_lr_scale)

        self.data_init_samples = 5000 if whiten_stem else 0
        if whiten_stem:
            whitening = PatchWhitening(in_channels)
            if stem_width != whitening.out_channels:
                raise ValueError(
                    f"speedrun_net: whiten_stem=true makes 2 * channels * 2 * 2 = {whitening.out_channels} stem "
                    f"channels for {in_channels}-channel images; set stem_width={whitening.out_channels}, not "
                    f"{stem_width}"
                )
            layers: list[nn.Module] = [whitening, nn.GELU()]
        else:
            layers = [conv3x3(in_channels, stem_width, dirac_init), norm(stem_width), nn.GELU()]
        channels = stem_width
        for width in widths:
            layers += [conv3x3(channels, width, dirac_init), nn.MaxPool2d(2), norm(width), nn.GELU()]
            layers += [conv3x3(width, width, dirac_init), norm(width), nn.GELU()]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(channels, num_outputs, bias=False))
        self.logit_temperature = logit_temperature

    def init_from_data(self, images: torch.Tensor) -> None:
        """Whiten the stem's patches of ``images`` (normalized training images); nothing to do without a whitening
        stem."""
        stem = self.features[0]
        if isinstance(stem, PatchWhitening):
            stem.init_from_data(images)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)) / self.logit_temperature
