"""Run a network over a loader and keep what it predicts, for plots and prediction files."""

from collections.abc import Callable, Iterable

import torch
from torch import nn


@torch.inference_mode()
def predictions_and_targets(
    net: nn.Module, loader: Iterable, predict: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """All predictions and targets of the loader, in its order, on the CPU. ``predict`` turns a batch of inputs
    into predictions (``SupervisedModule.predict``, with the run's test-time augmentation); by default ``net``."""
    predict = predict or net
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    outputs, targets = [], []
    for x, y in loader:
        outputs.append(predict(x.to(device)).float().cpu())
        targets.append(y.cpu())
    net.train(was_training)
    return torch.cat(outputs), torch.cat(targets)
