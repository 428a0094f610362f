"""One GPU (or ``trainer.devices`` GPUs) per job of a sweep whose jobs run at once (``hydra/launcher=joblib``).

Without this every job takes ``cuda:0``, and parallel jobs fight over one GPU while the others idle. Each job leases
free GPUs from the pool ``sweep_gpus`` names before it trains, and holds them until it ends: one lock file per GPU in
the sweep directory, locked with ``flock``, which the system releases when the job's process ends, however it ends.
A job that finds too few free GPUs waits for them, so at most ``len(pool) // devices`` jobs train at once whatever
the launcher's ``n_jobs``. ``gpu_leases.jsonl`` in the sweep directory says which job held which GPU, and when.
"""

import fcntl
import json
import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, open_dict

from src.config.runtime import in_sweep, uses_cuda
from src.errors import ConfigError

log = logging.getLogger(__name__)


def gpu_pool(sweep_gpus: Any) -> list[int]:
    """The GPU indices ``sweep_gpus`` names: ``auto`` (every visible GPU), a count, a list, or null (none)."""
    if sweep_gpus is None:
        return []
    if sweep_gpus == "auto":
        return list(range(torch.cuda.device_count()))
    if isinstance(sweep_gpus, int) and not isinstance(sweep_gpus, bool) and sweep_gpus >= 1:
        return list(range(sweep_gpus))
    indices = list(sweep_gpus) if isinstance(sweep_gpus, ListConfig | list) else None
    if indices and all(isinstance(i, int) and i >= 0 for i in indices) and len(set(indices)) == len(indices):
        return indices
    raise ConfigError(
        f"sweep_gpus={sweep_gpus!r}: give auto (every visible GPU), a number of GPUs, a list of distinct GPU indices "
        "such as [0,2], or null (jobs do not lease GPUs)"
    )


def gpus_per_job(devices: Any, pool: list[int]) -> int:
    if devices in ("auto", -1):
        return len(pool)
    if isinstance(devices, int) and devices >= 1:
        return devices
    if isinstance(devices, ListConfig | list | str):
        raise ConfigError(
            f"trainer.devices={devices!r} names GPUs itself, which a sweep that leases them (sweep_gpus) cannot honor: "
            "give a count, e.g. trainer.devices=1, or sweep_gpus=null"
        )
    raise ConfigError(f"trainer.devices={devices!r} is no number of GPUs for a job: give e.g. trainer.devices=1")


def lease_wanted(cfg: DictConfig) -> tuple[list[int], int]:
    """The pool and the GPUs per job when this run is a sweep job that leases GPUs: its run uses CUDA, or
    ``sweep_gpus`` names the pool outright; else ``([], 0)``."""
    sweep_gpus = cfg.get("sweep_gpus")
    pool = gpu_pool(sweep_gpus)  # a bad value is refused in single runs too
    uncalled = sweep_gpus == "auto" and not uses_cuda(str(cfg.trainer.get("accelerator", "auto")))
    if not in_sweep() or not pool or uncalled:
        return [], 0
    count = gpus_per_job(cfg.trainer.get("devices", 1), pool)
    if count > len(pool):
        raise ConfigError(f"trainer.devices={count} GPUs per job, but sweep_gpus={sweep_gpus!r} holds {len(pool)}")
    return pool, count


def _try_lock(directory: Path, indices: list[int], count: int) -> list[tuple[int, IO[str]]]:
    held: list[tuple[int, IO[str]]] = []
    for index in indices:
        handle = open(directory / f"gpu{index}.lock", "a")  # noqa: SIM115 (held open as long as the lease)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        held.append((index, handle))
        if len(held) == count:
            break
    return held


def _release(held: list[tuple[int, IO[str]]]) -> None:
    for _, handle in held:
        handle.close()  # closing the file releases its flock


@contextmanager
def gpus_leased(cfg: DictConfig, poll_seconds: float = 0.5) -> Iterator[list[int]]:
    """Lease this job's GPUs for the duration of the block and point ``trainer.devices`` at them (when the run uses
    CUDA); yields the indices, or [] outside a leasing sweep."""
    pool, count = lease_wanted(cfg)
    if not pool:
        yield []
        return
    sweep_dir = Path(HydraConfig.get().sweep.dir)
    directory = sweep_dir / ".gpu_leases"
    directory.mkdir(parents=True, exist_ok=True)
    held = _try_lock(directory, pool, count)
    if len(held) < count:
        log.info("Waiting for %d free GPU(s) of %s (sweep_gpus)", count, pool)
    while len(held) < count:  # all or none: a partial hold is given back, so two jobs never hold half each
        _release(held)
        time.sleep(poll_seconds * random.uniform(0.5, 1.5))
        held = _try_lock(directory, pool, count)
    gpus, acquired = [index for index, _ in held], time.time()
    if uses_cuda(str(cfg.trainer.get("accelerator", "auto"))):
        with open_dict(cfg):
            cfg.trainer.devices = gpus
    log.info("Training on GPU %s of %s (sweep_gpus)", ", ".join(map(str, gpus)), pool)
    try:
        yield gpus
    finally:
        job = HydraConfig.get().job.num
        line = {"job": job, "gpus": gpus, "acquired": acquired, "released": time.time()}
        with open(sweep_dir / "gpu_leases.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
        _release(held)
