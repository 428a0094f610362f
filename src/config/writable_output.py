"""Hydra callback: an unwritable log directory is one clear line before Hydra creates the run directory (whose
own failure is a traceback)."""

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.config.checks import check_writable
from src.errors import ConfigError


def _check(directory: str) -> None:
    try:
        check_writable(Path(directory))
    except ConfigError as err:
        print(f"Error: {err}", file=sys.stderr)
        raise SystemExit(1) from None


class CheckOutputDir(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check(config.hydra.sweep.dir)
