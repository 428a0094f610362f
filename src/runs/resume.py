"""``resume=auto``: find this experiment's earlier runs; reuse a finished one, or continue the newest good checkpoint.

Runs are matched by a fingerprint saved in each ``result.json``: their resolved config (paths and resume settings
left out) and the identity of the data they read (so other files at the same path never match, and the same files
at another path do). A finished result is reused only if the source code is also unchanged; a checkpoint is
resumed even after a code change (a fix is the usual reason to resume), with a warning. Every decision is logged.
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from src.config.resolvers import PROJECT_ROOT
from src.errors import ConfigError
from src.runs.liveness import is_alive
from src.stop_and_resume.checkpoints import read_checkpoint

log = logging.getLogger(__name__)

# Keys that say where and how a run is written, or what it shows while it trains, not what it computes: a run
# resumed without its progress bar is the same run.
NOT_COMPUTED_KEYS = (
    *("paths", "resume", "ckpt_path", "print_config"),
    *("callbacks.progress_bar", "callbacks.model_summary"),
    *("trainer.enable_progress_bar", "trainer.enable_model_summary", "trainer.profiler"),
)
SOURCE_FILES = ("src/**/*.py", "*.py")
Run = tuple[Path, dict[str, Any]]


@dataclass(frozen=True)
class Fingerprint:
    config: str
    code: str
    data: str = ""  # the data module's identity of the files it reads; "" for data generated from the config

    def same_experiment(self, record: dict[str, Any]) -> bool:
        saved = record.get("fingerprint") or {}
        return saved.get("config") == self.config and saved.get("data", "") == self.data


@dataclass(frozen=True)
class Resumption:
    """What ``resume=auto`` found: a finished run to reuse, or a checkpoint to continue from (or neither)."""

    reuse: dict[str, Any] | None = None
    reuse_dir: Path | None = None
    checkpoint: Path | None = None


def fingerprint(cfg: DictConfig, data_identity: str = "") -> Fingerprint:
    config = cfg.copy()
    with open_dict(config):
        for key in config.paths:  # interpolated into loggers, callbacks and data: neutral placeholders
            config.paths[key] = f"<{key}>"
    values = OmegaConf.to_container(config, resolve=True)
    for key in NOT_COMPUTED_KEYS:
        *groups, name = key.split(".")
        node = values
        for group in groups:
            node = node.get(group) or {}
        node.pop(name, None)
    config_digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]
    code = hashlib.sha256()
    for pattern in SOURCE_FILES:
        for path in sorted(PROJECT_ROOT.glob(pattern)):
            code.update(path.relative_to(PROJECT_ROOT).as_posix().encode() + path.read_bytes())
    return Fingerprint(config_digest, code.hexdigest()[:16], data_identity)


def read_record(run_dir: Path) -> dict[str, Any] | None:
    """``run_dir``'s ``result.json``, or None where there is none or it is not readable JSON (with a warning)."""
    path = run_dir / "result.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning("Ignoring %s: not readable JSON", path)
        return None
    return record if isinstance(record, dict) else None


def earlier_runs(search_root: Path, exclude: Path) -> list[Run]:
    """Run directories (single runs and sweep jobs) under ``search_root`` with a readable ``result.json``,
    newest first."""
    found = []
    for pattern in ("runs/*/result.json", "multiruns/*/*/result.json"):
        for path in search_root.glob(pattern):
            if path.parent.resolve() != exclude.resolve() and (record := read_record(path.parent)) is not None:
                found.append((path.parent, record))
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


def find_resumption(
    search_root: Path, this_run: Fingerprint, own: Run | None, others: list[Run], refuse_live: bool = True
) -> Resumption:
    """Decide from the earlier runs of this experiment: ``own`` is what this run's directory already held (a
    pinned ``hydra.run.dir`` or sweep dir run again), ``others`` the runs under ``search_root``. A live run of it
    is refused (``refuse_live``: a single run) or passed over (a sweep job, whose twin is a job of its own)."""
    runs = []
    for run_dir, record in ([own] if own is not None else []) + others:
        if not this_run.same_experiment(record):
            continue
        if is_alive(record) and not refuse_live:
            log.info("resume=auto: skipping %s: it is still running (pid %s)", run_dir, record.get("pid"))
            continue
        if is_alive(record):  # continuing or repeating it now would make two live branches of one run
            raise ConfigError(
                f"resume=auto: {run_dir} is training this same experiment now (pid {record.get('pid')}); wait for "
                "it to end (then resume=auto reuses or continues it), or train another copy with resume=never"
            )
        runs.append((run_dir, record))
    for run_dir, record in runs:
        if record.get("status") == "completed":
            if record["fingerprint"].get("code") == this_run.code:
                log.info("resume=auto: reusing the finished run %s (resume=never trains again)", run_dir)
                return Resumption(reuse=record, reuse_dir=run_dir)
            log.info("resume=auto: not reusing the finished run %s: the source code changed since", run_dir)
    checkpoint = newest_good_checkpoint([d for d, r in runs if r.get("status") != "completed"])
    if checkpoint is None:
        why = f"{len(runs)} earlier runs of it left no readable checkpoint" if runs else "no earlier run of it"
        log.info("resume=auto: starting fresh: %s under %s", why, search_root)
        return Resumption()
    run_dir, record = next((d, r) for d, r in runs if d == checkpoint.parent.parent)
    log.info("resume=auto: continuing %s (%s run %s)", checkpoint, record.get("status"), run_dir)
    if record["fingerprint"].get("code") != this_run.code:
        log.warning("The source code changed since %s was written; resuming from it anyway", checkpoint)
    return Resumption(checkpoint=checkpoint)
