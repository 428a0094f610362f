"""``summary.csv`` and ``summary.md``: one row per job, best first, the best one marked."""

import csv
import math
from pathlib import Path

from src.report.jobs import Job


def columns(jobs: list[Job]) -> list[str]:
    """The value columns are named after the metrics: ``val/loss``, ``test/loss``."""
    metric, test_metric = (jobs[0].metric, jobs[0].test_metric) if jobs else ("value", "test")
    return ["best", "job", "overrides", "status", metric, test_metric, "epochs", "wall_time_s", "checkpoint", "error"]


def rows(jobs: list[Job]) -> list[dict[str, object]]:
    best = jobs[0] if jobs and jobs[0].succeeded else None
    metric, test_metric = columns(jobs)[4:6]
    return [
        {
            "best": job is best,
            "job": job.name,
            "overrides": job.overrides,
            "status": job.status,
            metric: job.value,
            test_metric: job.test_value,
            "epochs": job.epochs,
            "wall_time_s": job.wall_time_s,
            "checkpoint": job.checkpoint,
            "error": job.error,
        }
        for job in jobs
    ]


def write_csv(jobs: list[Job], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns(jobs))
        writer.writeheader()
        writer.writerows(rows(jobs))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def write_markdown(
    jobs: list[Job], path: Path, title: str, common_overrides: str, seeds_section: list[str] | None = None
) -> None:
    shown = [c for c in columns(jobs) if c not in ("best", "checkpoint")]
    lines = [f"# {title}", ""]
    if common_overrides:
        lines += [f"Every job: `{common_overrides}`", ""]
    lines += seeds_section or []
    if seeds_section:
        lines += ["## Every job", ""]
    lines += ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for row in rows(jobs):
        cells = [_cell(row[c]) for c in shown]
        if row["best"]:
            cells = [f"**{c}**" if c else c for c in cells]
            cells[0] += " (best)"
        lines.append("| " + " | ".join(cells) + " |")
    pruned = sum(job.status == "pruned" for job in jobs)
    failed = sum(not job.succeeded for job in jobs) - pruned
    counts = f"{len(jobs)} jobs, {len(jobs) - failed - pruned} completed, {failed} failed or unfinished"
    lines += ["", counts + (f", {pruned} pruned (Optuna)." if pruned else ".")]
    path.write_text("\n".join(lines) + "\n")
