"""Read what one multirun job left in its directory; a job that never finished still gets a row."""

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf


@dataclass
class Job:
    name: str
    overrides: str
    status: str
    metric: str
    value: float = math.nan
    test_metric: str = ""
    test_value: float = math.nan
    epochs: int | None = None
    wall_time_s: float | None = None
    checkpoint: str | None = None
    error: str = ""
    mode: str = "min"
    optimizer: str = ""
    lr: float = math.nan
    val_loss: list[tuple[int, float]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "completed" and math.isfinite(self.value)


def _val_loss_curve(metrics_csv: Path) -> list[tuple[int, float]]:
    if not metrics_csv.is_file():
        return []
    with open(metrics_csv) as f:
        return [(int(row["epoch"]), float(row["val/loss"])) for row in csv.DictReader(f) if row.get("val/loss")]


def read_job(job_dir: Path) -> Job:
    """One job's row: ``result.json`` for the outcome, the saved configs for what was run."""
    overrides = OmegaConf.load(job_dir / ".hydra" / "overrides.yaml")
    config_path = job_dir / "config.yaml"
    config: Any = (
        OmegaConf.load(config_path) if config_path.is_file() else OmegaConf.load(job_dir / ".hydra" / "config.yaml")
    )
    choices = OmegaConf.load(job_dir / ".hydra" / "hydra.yaml").hydra.runtime.choices
    result_path = job_dir / "result.json"
    try:
        result = json.loads(result_path.read_text()) if result_path.is_file() else {"status": "not started"}
    except (OSError, ValueError) as err:  # a disk that filled up mid-write, an edit by hand
        result = {"status": "corrupt", "error": f"{result_path} is not readable JSON: {err}"}
    status = "interrupted" if result["status"] == "running" else result["status"]
    metric = str(config.get("optimized_metric", ""))
    test_metric = "test/" + metric.split("/", 1)[1] if metric.startswith("val/") else ""
    metrics = result.get("metrics", {})
    return Job(
        name=job_dir.name,
        overrides=" ".join(str(o) for o in overrides),
        status=status,
        metric=metric,
        value=float(result.get("optimized_metric", {}).get("value", math.nan)),
        test_metric=test_metric,
        test_value=float(metrics.get(test_metric, math.nan)),
        epochs=result.get("epochs"),
        wall_time_s=result.get("wall_time_s"),
        checkpoint=result.get("best_checkpoint"),
        error=result.get("error", ""),
        mode=str(config.get("monitor_mode", "min")),
        optimizer=str(choices.get("optimizer") or ""),
        lr=float(OmegaConf.select(config, "optimizer.lr", default=math.nan)),
        # A job that reused an earlier run's result has its curves in that run's directory.
        val_loss=_val_loss_curve(Path(result.get("reused_from") or job_dir) / "csv" / "metrics.csv"),
    )


def split_common_overrides(jobs: list[Job]) -> str:
    """Keep only the overrides that vary on each job; return the ones every job shares."""
    if not jobs:
        return ""
    per_job = [job.overrides.split(" ") for job in jobs]
    common = [o for o in per_job[0] if all(o in other for other in per_job[1:])] if len(jobs) > 1 else []
    for job, overrides in zip(jobs, per_job, strict=True):
        job.overrides = " ".join(o for o in overrides if o not in common)
    return " ".join(common)


def _job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(
        (d for d in sweep_dir.iterdir() if (d / ".hydra" / "overrides.yaml").is_file()),
        key=lambda d: int(d.name) if d.name.isdigit() else d.name,
    )


def has_jobs(sweep_dir: Path) -> bool:
    return bool(_job_dirs(sweep_dir))


def read_sweep(sweep_dir: Path) -> tuple[list[Job], str]:
    """Every job directory (one holding ``.hydra/``) under ``sweep_dir``, best first, failures last; and the
    overrides all of them share."""
    job_dirs = _job_dirs(sweep_dir)
    jobs = [read_job(d) for d in job_dirs]
    common = split_common_overrides(jobs)
    succeeded = [j for j in jobs if j.succeeded]
    maximize = bool(succeeded) and succeeded[0].mode == "max"
    succeeded.sort(key=lambda j: j.value, reverse=maximize)
    return succeeded + [j for j in jobs if not j.succeeded], common
