"""Room to write: an unwritable directory or a full disk fails at start-up, not at the first checkpoint."""

import shutil
from pathlib import Path

from torch import nn

from src.atomic_write import unwritable
from src.errors import ConfigError


def check_writable(
    directory: Path,
    what: str = "the run directory",
    fix: str = "point paths.log_dir (or hydra.run.dir) at a writable directory",
) -> None:
    """An unwritable directory fails now, not at the first checkpoint an hour into training."""
    err = unwritable(directory)
    if err is not None:
        raise ConfigError(f"cannot write {what} {directory}: {err.strerror or err}; {fix}")


def checkpoint_bytes(net: nn.Module) -> int:
    """About what one checkpoint takes: the weights plus up to two optimizer moments per weight (Adam)."""
    return 3 * sum(p.numel() * p.element_size() for p in net.parameters())


def check_free_space(directory: Path, net: nn.Module) -> None:
    """Room for the last and best checkpoints and the temporary file each write makes, or a clear error now."""
    needed = 3 * checkpoint_bytes(net)
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise ConfigError(
            f"only {free / 2**20:.1f} MiB free on the disk holding {directory}, and this run's checkpoints need "
            f"about {needed / 2**20:.1f} MiB; free some space or point paths.log_dir at another disk"
        )
