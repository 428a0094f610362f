"""Checkpoint files both engines read: Lightning's layout (``state_dict`` with ``net.`` keys, ``epoch``, ...)."""

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from src.utils.errors import ConfigError

PREFIX = "net."


def save_atomic(checkpoint: dict[str, Any], path: Path) -> None:
    """Write beside the target and rename over it: a crash mid-write never leaves a half file under its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(checkpoint, tmp)
    os.replace(tmp, path)


def net_state(net: nn.Module) -> dict[str, torch.Tensor]:
    """The network's weights under the keys a Lightning checkpoint of ``SupervisedModule`` uses."""
    return {PREFIX + key: value for key, value in net.state_dict().items()}


def load_net_weights(path: str | Path, net: nn.Module) -> dict[str, Any]:
    """Load the network weights of a checkpoint from either engine into ``net``; return the whole checkpoint."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        state = {k[len(PREFIX) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(PREFIX)}
    except (OSError, RuntimeError, KeyError, EOFError) as err:
        raise ConfigError(
            f"{path} is not a readable checkpoint of this template ({type(err).__name__}: {err})"
        ) from None
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ConfigError(f"{path} holds weights of another model or shape: {err}") from None
    return checkpoint
