"""Groups of seeds in a sweep report: the spread of each setting, failed jobs shown, the best tested against the
runner-up by Welch's t-test."""

import math

import pytest

from src.report.jobs import Job
from src.report.seeds import Spread, group_by_seed, markdown_lines, separation


def job(name: str, overrides: str, value: float, status: str = "completed") -> Job:
    return Job(name=name, overrides=overrides, status=status, metric="val/loss", value=value, test_metric="test/loss")


def test_spread_is_mean_std_and_the_student_t_interval() -> None:
    spread = Spread.of([1.0, 2.0, 3.0])
    assert (spread.n, spread.mean, spread.std) == (3, 2.0, 1.0)
    assert spread.half_width == pytest.approx(4.302653, rel=1e-6)  # t(0.975, 2) * 1.0
    assert str(spread) == "2 ± 1 (95%: -2.30265 to 6.30265)"
    assert Spread.of([5.0]).n == 1 and math.isnan(Spread.of([5.0]).std) and str(Spread.of([])) == ""


def test_groups_differ_only_in_seed_best_first_and_show_their_failed_jobs() -> None:
    jobs = [
        job("0", "optimizer=sgd seed=0", 0.30),
        job("1", "optimizer=sgd seed=1", 0.32),
        job("2", "optimizer=sgd seed=2", math.nan, status="failed"),
        job("3", "optimizer=adam seed=0", 0.10),
        job("4", "optimizer=adam seed=1", 0.11),
        job("5", "optimizer=adam seed=2", 0.12),
        job("6", "optimizer=rmsprop seed=0", math.nan, status="failed"),
    ]
    groups = group_by_seed(jobs)
    assert [g.overrides for g in groups] == ["optimizer=adam", "optimizer=sgd", "optimizer=rmsprop"]
    assert [g.metric.n for g in groups] == [3, 2, 0]
    lines = markdown_lines(groups, "val/loss", "test/loss")
    assert any(line.startswith("| optimizer=sgd | 2 | 0.31 ± 0.014") and "job 2 (failed)" in line for line in lines)
    assert any(line.startswith("| optimizer=rmsprop | 0 |") and "job 6 (failed)" in line for line in lines)


def test_separation_says_whether_the_best_beats_the_runner_up_beyond_the_noise() -> None:
    apart = group_by_seed([job(str(i), f"lr={lr} seed={i}", v) for i, (lr, v) in enumerate(
        [(1, 0.10), (1, 0.11), (1, 0.12), (2, 0.50), (2, 0.51), (2, 0.52)])])  # fmt: skip
    assert separation(apart).startswith(
        "The best group is separated from the runner-up by more than the noise of seeds and folds"
    )
    close = group_by_seed([job(str(i), f"lr={lr} seed={i}", v) for i, (lr, v) in enumerate(
        [(1, 0.10), (1, 0.30), (1, 0.20), (2, 0.25), (2, 0.15), (2, 0.35)])])  # fmt: skip
    assert separation(close).startswith("The best group is not separated from the runner-up")


def test_a_sweep_without_repeated_settings_has_no_groups() -> None:
    assert group_by_seed([job("0", "lr=1", 0.1), job("1", "lr=2", 0.2)]) == []


def test_folds_group_as_seeds_do_and_together_with_them() -> None:
    jobs = [
        job(f"{opt}{fold}{seed}", f"optimizer={opt} data.folds=3 data.fold={fold} seed={seed}", value)
        for opt, base in (("sgd", 0.3), ("adam", 0.1))
        for fold in range(3)
        for seed, value in ((0, base + 0.01 * fold), (1, base + 0.01 * fold + 0.005))
    ]
    groups = group_by_seed(jobs)
    assert [(g.overrides, g.metric.n) for g in groups] == [
        ("optimizer=adam data.folds=3", 6),
        ("optimizer=sgd data.folds=3", 6),
    ]
    assert groups[0].metric.mean == pytest.approx(0.1125)
    assert separation(groups).startswith("The best group is separated")
