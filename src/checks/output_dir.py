"""Hydra callback: an unwritable log directory, or a ``hydra.run.dir`` that holds something other than a run, is one
clear line before Hydra creates or writes into the run directory (its own failure is a traceback, and a run would
overwrite another folder's ``config.yaml`` and ``checkpoints/`` without a word)."""

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.checks.disk import check_writable
from src.errors import ConfigError


def _check(directory: str) -> None:
    try:
        check_writable(Path(directory))
    except ConfigError as err:
        print(f"Error: {err}", file=sys.stderr)
        raise SystemExit(1) from None


def _foreign_entries(directory: Path) -> list[str]:
    """What a folder holds besides a run's own files, unless it is a run (its ``result.json``), which a pinned
    ``hydra.run.dir`` continues or reuses."""
    if not directory.is_dir() or (directory / "result.json").is_file():
        return []
    return sorted(p.name for p in directory.iterdir() if p.name != ".hydra" and not p.name.endswith(".log"))


class CheckOutputDir(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check(config.hydra.run.dir)
        if config.get("task_name") != "train":
            return  # eval and export write their own files into a run directory of theirs
        if foreign := _foreign_entries(Path(config.hydra.run.dir)):
            print(
                f"Error: hydra.run.dir={config.hydra.run.dir} already holds {', '.join(foreign[:5])}, and is not a "
                "run of this template (no result.json): a run would overwrite them; pick a new or empty directory",
                file=sys.stderr,
            )
            raise SystemExit(1)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check(config.hydra.sweep.dir)
