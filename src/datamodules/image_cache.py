"""Decode a data set once into uint8 tensors; later starts load one file instead of parsing the originals."""

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

log = logging.getLogger(__name__)

Tensors = dict[str, torch.Tensor]


def fingerprint(folder: Path, names: Sequence[str]) -> list[list[int | str]]:
    """Name, size and modification time of each source file: a changed source invalidates the cache."""
    return [[name, (folder / name).stat().st_size, (folder / name).stat().st_mtime_ns] for name in names]


def cache_path(cache_dir: Path, name: str, source: Path) -> Path:
    """One cache file per data set and source directory, so two data dirs never share a cache."""
    tag = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:10]
    return cache_dir / f"{name}-{tag}.pt"


def load_or_decode(path: Path, source_fingerprint: list, decode: Callable[[], Tensors]) -> Tensors:
    """Load the cache when it matches the sources, else decode and write it atomically (temp file + rename)."""
    if path.is_file():
        cached = torch.load(path, weights_only=True)
        if cached.get("fingerprint") == source_fingerprint:
            return cached["tensors"]
        log.info("Sources changed since %s was written; decoding again", path)
    tensors = decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save({"fingerprint": source_fingerprint, "tensors": tensors}, tmp)
    os.replace(tmp, path)
    log.info("Decoded into %s", path)
    return tensors
