"""Build a sweep's report from its job directories alone, so it also works for interrupted sweeps."""

from pathlib import Path

from src.report.jobs import Job, read_sweep
from src.report.plots import plot_metric_vs_lr, plot_val_loss_curves
from src.report.tables import write_csv, write_markdown

REPORT_FILES = ("summary.csv", "summary.md", "metric_vs_lr.png", "val_loss_curves.png")


def build_report(sweep_dir: Path) -> list[Job]:
    """Write the report files into ``sweep_dir`` and return the jobs, best first."""
    jobs, common_overrides = read_sweep(sweep_dir)
    write_csv(jobs, sweep_dir / "summary.csv")
    write_markdown(jobs, sweep_dir / "summary.md", f"Sweep {sweep_dir.name}", common_overrides)
    plot_metric_vs_lr(jobs, sweep_dir / "metric_vs_lr.png")
    plot_val_loss_curves(jobs, sweep_dir / "val_loss_curves.png")
    return jobs
