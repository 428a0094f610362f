"""A checkpoint named to resume from must be one this run can continue."""

from collections.abc import Callable
from pathlib import Path

from torch import nn
from torch.optim import Optimizer

from src.errors import ConfigError
from src.stop_and_resume.checkpoints import load_net_weights


def check_resumable(
    path: str | Path, net: nn.Module, make_optimizer: Callable[..., Optimizer], max_epochs: int | None, engine: str
) -> None:
    """Refuse a checkpoint that cannot continue this run, before any training: unreadable, another model, another
    optimizer (whose saved state would not fit), already past this run's last epoch, or written by the scratch
    loop for Lightning to continue (its loops' state is not in it)."""
    checkpoint = load_net_weights(path, net)
    if engine == "lightning" and "pytorch-lightning_version" not in checkpoint:
        raise ConfigError(
            f"{path} was written by engine=scratch, and Lightning cannot continue it (it holds none of Lightning's "
            f"loop state); resume it with engine=scratch, or start from its weights with init_weights={path}"
        )
    if max_epochs is not None and max_epochs >= 0 and checkpoint["epoch"] > max_epochs:
        raise ConfigError(
            f"{path} was saved at epoch {checkpoint['epoch']}, past trainer.max_epochs={max_epochs}: this run would "
            f"train nothing; raise trainer.max_epochs to train on, or evaluate it with python eval.py ckpt_path={path}"
        )
    states = checkpoint.get("optimizer_states") or []
    if not states:
        raise ConfigError(f"{path} holds no optimizer state; to start from its weights use init_weights={path}")
    saved = set(states[0]["param_groups"][0])  # the optimizer's settings, plus any a scheduler added
    missing = set(make_optimizer(net.parameters()).defaults) - saved
    if missing:
        raise ConfigError(
            f"{path} was written with another optimizer: it has no {sorted(missing)}, which this run's optimizer "
            f"needs; resume with the optimizer it was trained with, or use init_weights={path} to start from its "
            "weights with this one"
        )
