"""Build a sweep's report from its job directories alone, so it also works for interrupted sweeps."""

from pathlib import Path

from src.report.jobs import Job, read_sweep
from src.report.plots import plot_groups, plot_metric_vs_lr, plot_val_loss_curves
from src.report.seeds import group_by_seed, markdown_lines, write_groups_csv
from src.report.tables import write_csv, write_markdown

REPORT_FILES = ("summary.csv", "summary.md", "metric_vs_lr.png", "val_loss_curves.png")
SEED_FILES = ("seeds.csv", "seeds.png")  # when some setting ran several seeds


def build_report(sweep_dir: Path) -> list[Job]:
    """Write the report files into ``sweep_dir`` and return the jobs, best first."""
    jobs, common_overrides = read_sweep(sweep_dir)
    groups = group_by_seed(jobs)
    metric, test_metric = (jobs[0].metric, jobs[0].test_metric) if jobs else ("", "")
    write_csv(jobs, sweep_dir / "summary.csv")
    seeds_section = markdown_lines(groups, metric, test_metric) if groups else []
    write_markdown(jobs, sweep_dir / "summary.md", f"Sweep {sweep_dir.name}", common_overrides, seeds_section)
    plot_metric_vs_lr(jobs, sweep_dir / "metric_vs_lr.png")
    plot_val_loss_curves(jobs, sweep_dir / "val_loss_curves.png")
    if groups:
        write_groups_csv(groups, sweep_dir / "seeds.csv")
        plot_groups(groups, metric, sweep_dir / "seeds.png")
    return jobs
