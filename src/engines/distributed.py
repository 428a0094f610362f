"""Process groups and devices: their set-up for the scratch engine (under ``torchrun``, or one process on the GPU a
sweep leased), and what a process says when a peer dies."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
from omegaconf import DictConfig, ListConfig

from src.config.resolvers import RUN_NAME_VARIABLE, new_run_name
from src.errors import PeerLostError, one_line

# How gloo and NCCL say, deep inside a collective, that the process at the other end is gone.
PEER_LOST = ("Connection reset by peer", "Connection closed by peer", "remote process exited")


def world() -> tuple[int, int, int]:
    """(global rank, local rank, world size) from the variables torchrun sets; (0, 0, 1) without it.
    Processes that Lightning starts for DDP on one machine have only ``LOCAL_RANK``, which is then the rank."""
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    return int(os.environ.get("RANK", local_rank)), local_rank, int(os.environ.get("WORLD_SIZE", 1))


def is_rank_zero() -> bool:
    """The one process that writes the run's record and files. On machine ``NODE_RANK`` > 0 of a Lightning run over
    several machines, no process is, whatever its local rank."""
    return world()[0] == 0 and int(os.environ.get("NODE_RANK", 0)) == 0


def named_gpu(trainer: DictConfig) -> int | None:
    """The GPU of ``trainer.devices=[i]``, one process on GPU i (what a sweep's lease gives a job); else None."""
    devices = trainer.get("devices", 1)
    return int(devices[0]) if isinstance(devices, ListConfig | list) and len(devices) == 1 else None


def init_distributed(use_cuda: bool, gpu: int | None = None) -> tuple[torch.device, int, int]:
    """Join the process group torchrun prepared (NCCL on GPUs, gloo on CPUs); return device, rank, world size.
    ``gpu``: the GPU of a one-process run, where not the first."""
    rank, local_rank, world_size = world()
    device = torch.device("cuda", local_rank if gpu is None else gpu) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return device, rank, world_size


def agree_on_run_name() -> None:
    """Under torchrun, every process must write into one run directory: rank 0 draws its name and sends it to the
    others before Hydra creates any directory. Called by train.py before ``@hydra.main``."""
    rank, _, world_size = world()
    launched_by_torchrun = "TORCHELASTIC_RUN_ID" in os.environ
    if not launched_by_torchrun or world_size == 1 or RUN_NAME_VARIABLE in os.environ:
        return
    if not dist.is_initialized():
        dist.init_process_group(backend="cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    name = [new_run_name() if rank == 0 else None]
    dist.broadcast_object_list(name, src=0)
    os.environ[RUN_NAME_VARIABLE] = str(name[0])


@contextmanager
def peers_watched(world_size: int) -> Iterator[None]:
    """In a run of several processes, the error a collective raises when another process died (killed, out of
    memory) becomes one line that says the run can resume, instead of a page of traceback from inside autograd."""
    try:
        yield
    except RuntimeError as err:
        lost = next((mark for mark in PEER_LOST if mark in str(err)), None)
        if world_size < 2 or (lost is None and not isinstance(err, dist.DistError)):
            raise
        cause = lost or f"{type(err).__name__}: {one_line(err)[:200]}"
        raise PeerLostError(
            f"another process of this {world_size}-process run stopped, or a collective failed ({cause}), so this "
            "one stops too; its checkpoints are kept: run the same command with resume=auto to continue"
        ) from None


def all_reduce_sum(*values: torch.Tensor) -> list[torch.Tensor]:
    """Sum tensors over all processes (a no-op in a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    stacked = torch.stack([v.double() for v in values])
    dist.all_reduce(stacked)
    return list(stacked.unbind())


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown_distributed() -> None:
    """Leave the process group before the interpreter exits: a gloo or NCCL group still alive at exit can abort the
    process ("terminate called without an active exception") after the run has succeeded."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
