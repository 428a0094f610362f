"""Checkpoint files both engines read: Lightning's layout (``state_dict`` with ``net.`` keys, ``epoch``, ...)."""

import pickle
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from src.atomic_write import write_atomic
from src.errors import CheckpointWriteError, ConfigError, one_line

PREFIX = "net."
REQUIRED_KEYS = ("state_dict", "epoch", "global_step")


def save_atomic(checkpoint: dict[str, Any], path: Path) -> None:
    """A write that fails (a full disk, a file-size limit) stops the run in one line; the previous file stays."""
    try:
        write_atomic(path, lambda file: torch.save(checkpoint, file))
    except (OSError, RuntimeError) as err:  # torch.save reports a failed write as a RuntimeError of its own
        raise CheckpointWriteError(
            f"cannot write the checkpoint {path} ({one_line(err)}); the one written before is intact: free disk "
            "space or raise the file-size limit, then run the same command with resume=auto"
        ) from None


def copy_into_run(path: str | Path | None, old_dir: Path, new_dir: Path, copy: bool = True) -> Path | None:
    """Where a checkpoint of a run resumed from ``old_dir`` lives in this run's ``new_dir``: copied there (by one
    process: ``copy``), so a resumed run directory stands alone. Paths outside ``old_dir`` stay as they are."""
    source = Path(path) if path else None
    if source is None or source.parent != old_dir or not source.is_file():
        return source
    target = new_dir / source.name
    if copy and not target.exists():
        new_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return target


def net_state(net: nn.Module) -> dict[str, torch.Tensor]:
    """The network's weights under the keys a Lightning checkpoint of ``SupervisedModule`` uses."""
    return {PREFIX + key: value for key, value in net.state_dict().items()}


def rng_states() -> dict[str, Any]:
    """Every global generator a training step may draw from (dropout, augmentation, samplers), as tensors and
    plain values, so checkpoints still load with ``torch.load(weights_only=True)``, Lightning's default."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached_gaussian),
        "python": random.getstate(),
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, keys, *rest = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    random.setstate(states["python"])


def save_progress(checkpoint: dict[str, Any], metrics: Mapping[str, Any]) -> None:
    """Add to a checkpoint, in either engine, what an exact resume needs and Lightning does not keep: every RNG's
    state (else a resumed run draws other dropout masks) and the latest epoch metrics (else a run resumed after its
    last epoch reports none)."""
    checkpoint["rng"] = rng_states()
    checkpoint["metrics"] = {name: float(value) for name, value in metrics.items()}


def restore_progress(checkpoint: dict[str, Any]) -> dict[str, float]:
    """Restore the RNG states :func:`save_progress` saved; return the epoch metrics it saved."""
    if "rng" in checkpoint:
        restore_rng_states(checkpoint["rng"])
    return dict(checkpoint.get("metrics", {}))


def read_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """The whole checkpoint, or a :class:`ConfigError` naming the file and what is wrong with it. ``mmap``: its
    tensors are read from the file only when used (for a caller that reads its counters alone)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    except (OSError, RuntimeError, EOFError, ValueError, AttributeError, ImportError, pickle.UnpicklingError) as err:
        raise ConfigError(
            f"{path} is not a readable checkpoint (truncated or not a torch file: {type(err).__name__}: {err})"
        ) from None
    missing = [key for key in REQUIRED_KEYS if not isinstance(checkpoint, dict) or key not in checkpoint]
    if missing:
        raise ConfigError(f"{path} is not a checkpoint of this template: it has no {', '.join(missing)}")
    return checkpoint


def load_net_weights(path: str | Path, net: nn.Module) -> dict[str, Any]:
    """Load the network weights of a checkpoint from either engine into ``net``; return the whole checkpoint."""
    checkpoint = read_checkpoint(path)
    state = {k[len(PREFIX) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(PREFIX)}
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ConfigError(f"{path} holds weights of another model or shape: {one_line(err)}") from None
    return checkpoint
