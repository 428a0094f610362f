"""Every named experiment composes and runs one batch of everything on the CPU (real recipes, tiny fake data)."""

import math
from pathlib import Path

import pytest

from src.config.resolvers import PROJECT_ROOT
from src.datamodules.fake_files import write_cifar10, write_mnist
from train import train

EXPERIMENTS = sorted(p.stem for p in (PROJECT_ROOT / "configs" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_a_fast_dev_run(make_cfg, tmp_path: Path, experiment: str) -> None:
    write_mnist(tmp_path / "data")
    write_cifar10(tmp_path / "data")
    overrides = [f"experiment={experiment}", f"paths.data_dir={tmp_path / 'data'}", "debug=fast_dev_run", "logger=none"]
    cfg = make_cfg(*overrides)
    if "val_size" in cfg.data:  # image data: the fakes hold 60 images and no official checksums
        # GPU recipes ask for 16-mixed, which the CPU runs as bf16 convolutions: correct but very slow.
        image = ["data.verify_checksums=false", "data.val_size=10", "data.batch_size=8", "trainer.precision=32-true"]
        cfg = make_cfg(*overrides, *image)
    value, _ = train(cfg)
    assert math.isfinite(value)
