"""Hydra callback: every multirun ends with its report in the sweep directory, and fails when every job did."""

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.report.build import build_report

log = logging.getLogger(__name__)


class SweepReport(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = build_report(sweep_dir)
        pruned = [job for job in jobs if job.status == "pruned"]  # stopped early by an Optuna pruner, by design
        failed = [job for job in jobs if not job.succeeded and job.status != "pruned"]
        log.info(
            "Sweep report: %s (%d jobs, %d failed, %d pruned)",
            sweep_dir / "summary.md",
            len(jobs),
            len(failed),
            len(pruned),
        )
        for job in failed:
            log.warning("Job %s (%s) %s: %s", job.name, job.overrides, job.status, job.error)
        if jobs and len(failed) == len(jobs):
            log.error(
                "Every job of the sweep failed (%d of %d); the first: %s", len(failed), len(jobs), failed[0].error
            )
            raise SystemExit(1)
