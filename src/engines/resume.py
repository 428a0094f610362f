"""``resume=auto``: find this experiment's earlier runs; reuse a finished one, or continue the newest good checkpoint.

Runs are matched by a fingerprint of their resolved config (paths and resume settings left out) saved in each
``result.json``. A finished result is reused only if the source code is also unchanged; a checkpoint is resumed
even after a code change (a fix is the usual reason to resume), with a warning.
"""

import hashlib
import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn
from torch.optim import Optimizer

from src.engines.checkpoints import load_net_weights, read_checkpoint
from src.utils.errors import ConfigError
from src.utils.resolvers import PROJECT_ROOT

log = logging.getLogger(__name__)

RESUME_MODES = ("auto", "never")
# Keys that say where and how a run is written, not what it computes.
RUN_SPECIFIC_KEYS = ("paths", "resume", "ckpt_path", "print_config")
SOURCE_FILES = ("src/**/*.py", "*.py")


@dataclass(frozen=True)
class Fingerprint:
    config: str
    code: str


@dataclass(frozen=True)
class Resumption:
    """What ``resume=auto`` found: a finished run to reuse, or a checkpoint to continue from (or neither)."""

    reuse: dict[str, Any] | None = None
    reuse_dir: Path | None = None
    checkpoint: Path | None = None


def fingerprint(cfg: DictConfig) -> Fingerprint:
    config = cfg.copy()
    with open_dict(config):
        for key in config.paths:  # interpolated into loggers, callbacks and data: neutral placeholders
            config.paths[key] = f"<{key}>"
    values = OmegaConf.to_container(config, resolve=True)
    for key in RUN_SPECIFIC_KEYS:
        values.pop(key, None)
    config_digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]
    code = hashlib.sha256()
    for pattern in SOURCE_FILES:
        for path in sorted(PROJECT_ROOT.glob(pattern)):
            code.update(path.relative_to(PROJECT_ROOT).as_posix().encode() + path.read_bytes())
    return Fingerprint(config_digest, code.hexdigest()[:16])


def process_identity() -> dict[str, Any]:
    """Saved with a running record, so a later run can tell a live run from one that was killed."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def _is_alive(record: dict[str, Any]) -> bool:
    if record.get("status") != "running" or record.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(record["pid"]), 0)
    except (KeyError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True  # another user's process holds that pid
    return True


def earlier_runs(search_root: Path, exclude: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Run directories (single runs and sweep jobs) under ``search_root`` with a readable ``result.json``,
    newest first."""
    found = []
    for pattern in ("runs/*/result.json", "multiruns/*/*/result.json"):
        for path in search_root.glob(pattern):
            if path.parent.resolve() == exclude.resolve():
                continue
            try:
                found.append((path.parent, json.loads(path.read_text())))
            except (OSError, ValueError):
                log.warning("Ignoring %s: not readable JSON", path)
    return sorted(found, key=lambda run: run[1].get("started_at", ""), reverse=True)


def newest_good_checkpoint(run_dirs: list[Path]) -> Path | None:
    """The most recently written checkpoint that loads; half-written temp files are never considered."""
    candidates = [p for d in run_dirs for p in (d / "checkpoints").glob("*.ckpt") if not p.name.startswith(".")]
    for path in sorted(candidates, key=lambda p: p.stat().st_mtime_ns, reverse=True):
        try:
            read_checkpoint(path)
        except ConfigError as err:
            log.warning("Skipping a damaged checkpoint: %s", err)
            continue
        return path
    return None


def find_resumption(cfg: DictConfig, search_root: Path, mine: Fingerprint) -> Resumption:
    runs = [
        (d, r)
        for d, r in earlier_runs(search_root, exclude=Path(cfg.paths.output_dir))
        if r.get("fingerprint", {}).get("config") == mine.config and not _is_alive(r)
    ]
    for run_dir, record in runs:
        if record.get("status") == "completed" and record["fingerprint"].get("code") == mine.code:
            return Resumption(reuse=record, reuse_dir=run_dir)
    checkpoint = newest_good_checkpoint([d for d, r in runs if r.get("status") != "completed"])
    if checkpoint is not None:
        record = next(r for d, r in runs if d == checkpoint.parent.parent)
        if record["fingerprint"].get("code") != mine.code:
            log.warning("The source code changed since %s was written; resuming from it anyway", checkpoint)
    return Resumption(checkpoint=checkpoint)


def check_resumable(path: str | Path, net: nn.Module, make_optimizer: Callable[..., Optimizer]) -> None:
    """Refuse a checkpoint that cannot continue this run, before any training: unreadable, another model, or
    another optimizer (whose saved state would not fit)."""
    checkpoint = load_net_weights(path, net)
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
