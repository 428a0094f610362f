"""Two CPU processes (gloo) equal one process on the same global batch, for both engines, in one run directory."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from src.utils.resolvers import PROJECT_ROOT
from tests.conftest import read_result
from train import train

COMMON = [
    "data=xor_clouds",
    "model=mlp",
    "trainer.max_epochs=2",
    "trainer.accelerator=cpu",
    "print_config=false",
    "callbacks.progress_bar=null",
    "logger=csv",
]
LAUNCH = {
    "lightning": [sys.executable, "train.py", "engine=lightning", "trainer=ddp", "trainer.devices=2"],
    "scratch": [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "train.py",
        "engine=scratch",
    ],
}


@pytest.mark.parametrize("engine", ["lightning", "scratch"])
def test_two_process_ddp_equals_one_process_with_the_same_global_batch(make_cfg, tmp_path: Path, engine: str) -> None:
    single_cfg = make_cfg(f"engine={engine}", *COMMON, "data.batch_size=32")
    train(single_cfg)
    single = read_result(single_cfg)

    logs = tmp_path / "ddp"
    command = [*LAUNCH[engine], *COMMON, "data.batch_size=16", f"paths.log_dir={logs}"]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    [run] = (logs / "train" / "runs").iterdir()  # every process wrote into one run directory
    ddp = json.loads((run / "result.json").read_text())

    assert ddp["status"] == "completed" and ddp["epochs"] == 2
    # Equal test metrics also mean every test sample was counted exactly once across the two processes.
    for name in ("train/loss", "val/loss", "val/acc", "test/loss", "test/acc"):
        assert ddp["metrics"][name] == pytest.approx(single["metrics"][name], rel=1e-4), name
    weights = [
        torch.load(Path(r) / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
        for r in (single_cfg.paths.output_dir, run)
    ]
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=1e-4, atol=1e-6)
