"""The engine benchmarks' common ground: a recipe with callbacks only Lightning runs composes to one that either
engine runs (benchmarks/timing.py)."""

from pathlib import Path

import pytest

from benchmarks.timing import compose_same_work, lightning_only_callbacks
from src.checks.scratch_limits import check_scratch_settings
from src.config.compose import compose_run


@pytest.mark.parametrize(
    ("experiment", "lightning_only"),
    [
        ("cifar10_speedrun", ["lookahead", "freeze_whitening_bias"]),
        ("mnist_speedrun", ["lookahead"]),
        ("mnist_cnn", []),
    ],
)
def test_the_callbacks_only_lightning_runs_are_off_for_both_engines(
    tmp_path: Path, experiment: str, lightning_only: list[str]
) -> None:
    overrides = [f"experiment={experiment}", "engine=scratch"]
    assert lightning_only_callbacks(compose_run(overrides, tmp_path / "recipe")) == lightning_only
    cfg = compose_same_work(overrides, tmp_path / "same")
    assert all(cfg.callbacks[name] is None for name in lightning_only)
    assert lightning_only_callbacks(cfg) == []
    check_scratch_settings(cfg)  # the hand-written loop takes it
