"""Every benchmark, and every part of the script that makes the README's GPU tables, runs in its quick mode on the
CPU on tiny data: a benchmark that rots is found here, not on a rented GPU."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from src.config.resolvers import PROJECT_ROOT

GPU_TABLE_PARTS = ["speedruns", "switches", "overhead", "precision", "long"]
# The fakes hold 60 images per data set, none of the official checksums.
ON_FAKE_DATA = "data.verify_checksums=false data.val_size=10 data.batch_size=8 data.eval_batch_size=8"
# Every command's decoded-data cache goes under the test's own directory.
NEGATIVE_NUMBER = re.compile(r"(?<![\w.\-])-\d+\.\d+")


def assert_ran_cleanly(done: subprocess.CompletedProcess) -> str:
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "Traceback" not in output, output[-4000:]
    assert not NEGATIVE_NUMBER.findall(done.stdout), done.stdout  # no time, rate or count is negative
    return done.stdout


@pytest.mark.parametrize("part", GPU_TABLE_PARTS)
def test_gpu_tables_part_runs_in_quick_mode(part: str, fake_data: Path, tmp_path: Path) -> None:
    extra = f"{ON_FAKE_DATA} paths.cache_dir={tmp_path / 'cache'}"
    env = {**os.environ, "QUICK": "1", "PYTHON": sys.executable, "EXTRA": extra, "TMPDIR": str(tmp_path)}
    command = ["bash", "benchmarks/gpu_tables.sh", str(fake_data), part]
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert f"=== {part}" in assert_ran_cleanly(done)


@pytest.mark.parametrize(
    "command",
    [
        [
            "benchmarks.loader_throughput",
            "--data-dir={data}",
            "--batch-size=8",
            "--batches=2",
            "--repeats=1",
            "--workers=0",
        ],
        ["benchmarks.startup", "paths.data_dir={data}", "--repeats=1"],
        [
            "benchmarks.step_cost",
            "--data-dir={data}",
            "--recipes=headline",
            "--long=12",
            "--repeats=1",
            "--timed-steps=50",
            "--extra",
            "data.batch_size=4",
        ],
    ],
    ids=["loader_throughput", "startup", "step_cost"],
)
def test_other_benchmark_runs_in_quick_mode(command: list[str], fake_data: Path, tmp_path: Path) -> None:
    unverified = ["data.verify_checksums=false", "data.val_size=10", f"paths.cache_dir={tmp_path / 'cache'}"]
    arguments = [*(argument.format(data=fake_data) for argument in command), *unverified]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", *arguments], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert_ran_cleanly(done)
    assert " object at 0x" not in done.stdout and "<function " not in done.stdout  # tables, not Python objects
