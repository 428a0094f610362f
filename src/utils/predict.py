"""Run a network over a loader and keep what it predicts, for plots and prediction files."""

from collections.abc import Callable, Iterable

import torch
from torch import nn

from src.lit_modules.test_time import evaluation_outputs


@torch.inference_mode()
def predictions_and_targets(
    net: nn.Module,
    loader: Iterable,
    to_predictions: Callable[[torch.Tensor], torch.Tensor],
    flip: bool = False,
    shift: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """All predictions and targets of the loader, in its order, on the CPU; ``flip`` and ``shift`` average the
    outputs over views of each image, as validation and testing do (``evaluation_outputs``)."""
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    outputs, targets = [], []
    for x, y in loader:
        outputs.append(to_predictions(evaluation_outputs(net, x.to(device), flip, shift)).float().cpu())
        targets.append(y.cpu())
    net.train(was_training)
    return torch.cat(outputs), torch.cat(targets)
