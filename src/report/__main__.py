"""``python -m src.report <sweep_dir>``: (re)build a sweep's report, e.g. after it was interrupted."""

import argparse
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.table import Table

from src.config.resolvers import register_resolvers
from src.report.build import REPORT_FILES, SEED_FILES, build_report
from src.report.jobs import has_jobs


class OneLineParser(argparse.ArgumentParser):
    """argparse answers a mistake with its usage and the error on two lines; this says both on one."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}; {self.format_usage().strip()}\n")


def main() -> None:
    parser = OneLineParser(prog="python -m src.report", description=__doc__)
    parser.add_argument("sweep_dir", type=Path, help="a multirun directory, e.g. logs/train/multiruns/<date>_<id>")
    sweep_dir = parser.parse_args().sweep_dir
    register_resolvers()  # a job that never wrote config.yaml leaves Hydra's, with the configs' interpolations
    if not sweep_dir.is_dir():
        parser.error(f"{sweep_dir} is not a directory")
    if not has_jobs(sweep_dir):
        parser.error(f"{sweep_dir} holds no sweep: none of its folders is a job (with .hydra/overrides.yaml)")
    if not (sweep_dir / "multirun.yaml").is_file():  # Hydra writes it in every multirun's folder
        parser.error(
            f"{sweep_dir} holds single runs, not a sweep (no multirun.yaml): a report ranks the jobs of one sweep; "
            "pass a folder of logs/train/multiruns/"
        )
    jobs = build_report(sweep_dir)
    table = Table(title=f"{len(jobs)} jobs in {sweep_dir}")
    for column in ("job", "overrides", "status", jobs[0].metric if jobs else "metric"):
        table.add_column(column)
    for i, job in enumerate(jobs):
        value = f"{job.value:.6g}" + (" (best)" if i == 0 and job.succeeded else "")
        table.add_row(job.name, job.overrides, job.status, value)
    Console().print(table)
    written = [sweep_dir / name for name in (*REPORT_FILES, *SEED_FILES) if (sweep_dir / name).is_file()]
    print("Wrote " + ", ".join(str(path) for path in written))


if __name__ == "__main__":
    main()
