"""Decode a data set once into uint8 tensors; later starts load one file instead of parsing the originals.

Each cache file carries a checksum of its tensors, verified on every load: a damaged file (a full disk, a kill
mid-copy) is decoded again with a warning that names it, never read as data or reported as a broken checkpoint.
"""

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from src.atomic_write import unwritable, write_atomic

log = logging.getLogger(__name__)

Tensors = dict[str, torch.Tensor]


def source_stats(folder: Path, names: Sequence[str]) -> list[list[int | str]]:
    """Name, size and modification time of each source file: a changed source invalidates the cache."""
    return [[name, (folder / name).stat().st_size, (folder / name).stat().st_mtime_ns] for name in names]


def cache_path(cache_dir: Path, name: str, source: Path) -> Path:
    """One cache file per data set and source directory, so two data dirs never share a cache."""
    tag = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:10]
    return cache_dir / f"{name}-{tag}.pt"


def checksum(tensors: Tensors) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for key in sorted(tensors):
        tensor = tensors[key].contiguous()
        digest.update(f"{key}:{tensor.dtype}:{list(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).reshape(-1).numpy().data)
    return digest.hexdigest()


def _load_verified(path: Path, stats: list) -> Tensors | None:
    """The cached tensors, or None (with the reason logged) when there is no current, intact cache file."""
    if not path.is_file():
        return None
    try:
        cached = torch.load(path, weights_only=True)
        tensors, saved = cached["tensors"], cached.get("checksum")
        intact = isinstance(tensors, dict) and saved == checksum(tensors)
    except Exception as err:  # torch.load's errors on a damaged file vary (RuntimeError, EOFError, pickle's...)
        log.warning("The data cache %s is damaged (%s: %s); decoding the data again", path, type(err).__name__, err)
        return None
    if not intact:
        log.warning("The data cache %s fails its checksum; decoding the data again", path)
        return None
    if cached.get("fingerprint") != stats:
        log.info("Sources changed since %s was written; decoding again", path)
        return None
    return tensors


def load_or_decode(path: Path, stats: list, decode: Callable[[], Tensors]) -> Tensors:
    """Load the cache when it is current and intact, else decode and write it atomically with its checksum. An
    unwritable cache directory is found before decoding: the data is then decoded in memory, every run again."""
    tensors = _load_verified(path, stats)
    if tensors is not None:
        return tensors
    reason = unwritable(path.parent)
    if reason is not None:
        log.warning(
            "Cannot write the data cache in %s (%s): decoding in memory, and again at every start; set "
            "paths.cache_dir to a writable directory to decode once",
            path.parent,
            reason.strerror or reason,
        )
        return decode()
    tensors = decode()
    payload = {"fingerprint": stats, "checksum": checksum(tensors), "tensors": tensors}
    write_atomic(path, lambda file: torch.save(payload, file))
    log.info("Decoded into %s", path)
    return tensors
