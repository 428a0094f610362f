"""Sweeps over seeds and folds: the jobs that differ only in ``seed`` or ``data.fold`` (k-fold cross-validation)
form a group, and a group's spread is the noise of the seed and of the data held out.

One run per setting cannot tell a difference from noise; a group's mean, standard deviation and 95% interval
(Student's t) can, and Welch's t-test says whether the best group beats the runner-up by more than that noise.
"""

import csv
import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from scipy import stats

from src.report.jobs import Job

REPEAT = re.compile(r"(^|\s)\+*(seed|data\.fold)=\S+")  # what a group's jobs may differ in
SIGNIFICANCE = 0.05


@dataclass
class Spread:
    n: int
    mean: float
    std: float
    half_width: float  # of the 95% interval of the mean

    @classmethod
    def of(cls, values: list[float]) -> "Spread":
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return cls(0, math.nan, math.nan, math.nan)
        if len(finite) == 1:
            return cls(1, finite[0], math.nan, math.nan)
        std = statistics.stdev(finite)
        return cls(len(finite), statistics.fmean(finite), std, stats.t.ppf(0.975, len(finite) - 1) * std)

    def __str__(self) -> str:
        if self.n == 0:
            return ""
        if self.n == 1:
            return f"{self.mean:.6g}"
        low, high = self.mean - self.half_width, self.mean + self.half_width
        return f"{self.mean:.6g} ± {self.std:.2g} (95%: {low:.6g} to {high:.6g})"


@dataclass
class Group:
    overrides: str  # what the group's jobs share, seed aside
    jobs: list[Job]

    @property
    def completed(self) -> list[Job]:
        return [job for job in self.jobs if job.succeeded]

    @property
    def metric(self) -> Spread:
        return Spread.of([job.value for job in self.completed])

    @property
    def test_metric(self) -> Spread:
        return Spread.of([job.test_value for job in self.completed])

    @property
    def failed(self) -> list[Job]:
        return [job for job in self.jobs if not job.succeeded]


def group_by_seed(jobs: list[Job]) -> list[Group]:
    """The groups, best mean first and groups with no completed job last; empty when no setting ran more than one
    seed or fold (a sweep without them keeps its one-row-per-job table alone)."""
    by_setting: dict[str, list[Job]] = {}
    for job in jobs:
        by_setting.setdefault(REPEAT.sub("", job.overrides).strip(), []).append(job)
    if all(len(members) < 2 for members in by_setting.values()):
        return []
    groups = [Group(overrides or "(every job)", members) for overrides, members in by_setting.items()]
    maximize = bool(jobs) and jobs[0].mode == "max"
    scored = sorted((g for g in groups if g.completed), key=lambda g: g.metric.mean, reverse=maximize)
    return scored + [g for g in groups if not g.completed]


def separation(groups: list[Group]) -> str:
    """One line: is the best group ahead of the runner-up by more than the noise of seeds and folds?"""
    if len(groups) < 2 or min(len(groups[0].completed), len(groups[1].completed)) < 2:
        return "Too few completed seeds or folds in the two best groups (at least 2 each) to test their difference."
    best, runner_up = ([job.value for job in group.completed] for group in groups[:2])
    p_value = stats.ttest_ind(best, runner_up, equal_var=False).pvalue
    verdict = "is" if p_value < SIGNIFICANCE else "is not"
    return (
        f"The best group {verdict} separated from the runner-up by more than the noise of seeds and folds "
        f"(Welch's t-test, two-sided, p = {p_value:.3g}; threshold {SIGNIFICANCE})."
    )


def markdown_lines(groups: list[Group], metric: str, test_metric: str) -> list[str]:
    lines = ["## Groups of seeds and folds", "", separation(groups), ""]
    lines += [f"| group | n | {metric} | {test_metric} | failed |", "|---|---|---|---|---|"]
    for i, group in enumerate(groups):
        failed = ", ".join(f"job {job.name} ({job.status})" for job in group.failed)
        name = group.overrides.replace("|", "\\|") + (" (best)" if i == 0 and group.completed else "")
        lines.append(f"| {name} | {group.metric.n} | {group.metric} | {group.test_metric} | {failed} |")
    return [*lines, ""]


def write_groups_csv(groups: list[Group], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["group", "n", "mean", "std", "ci95_low", "ci95_high", "test_mean", "test_std", "failed"])
        for group in groups:
            m, t = group.metric, group.test_metric
            low, high = m.mean - m.half_width, m.mean + m.half_width
            writer.writerow([group.overrides, m.n, m.mean, m.std, low, high, t.mean, t.std, len(group.failed)])
