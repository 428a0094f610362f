"""The scratch engine under torchrun: two CPU processes (gloo) equal one process on the same global batch."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from src.utils.resolvers import PROJECT_ROOT

COMMON = [
    "engine=scratch",
    "data=xor_clouds",
    "model=mlp",
    "trainer.max_epochs=2",
    "trainer.accelerator=cpu",
    "print_config=false",
    "callbacks.progress_bar=null",
    "logger=csv",
]


def run(command: list[str]) -> None:
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


def test_two_process_ddp_equals_one_process_with_the_same_global_batch(tmp_path: Path) -> None:
    single_logs, ddp_logs = tmp_path / "single", tmp_path / "ddp"
    run([sys.executable, "train.py", *COMMON, "data.batch_size=32", f"paths.log_dir={single_logs}"])
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    run([*torchrun, "train.py", *COMMON, "data.batch_size=16", f"paths.log_dir={ddp_logs}"])

    [single_run] = (single_logs / "train" / "runs").iterdir()
    [ddp_run] = (ddp_logs / "train" / "runs").iterdir()  # both processes wrote into one run directory
    single, ddp = (json.loads((r / "result.json").read_text()) for r in (single_run, ddp_run))
    assert ddp["status"] == "completed" and ddp["global_step"] == single["global_step"] == 50
    for name in ("train/loss", "val/loss", "val/acc", "test/loss", "test/acc"):
        assert ddp["metrics"][name] == pytest.approx(single["metrics"][name], rel=1e-4), name
    weights = [
        torch.load(r / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"] for r in (single_run, ddp_run)
    ]
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=1e-4, atol=1e-6)
