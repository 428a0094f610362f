"""``python train.py`` as a user runs it: one run directory per run, and bad input answered by one clear line."""

import json
import subprocess
import sys
from pathlib import Path

from src.utils.resolvers import PROJECT_ROOT


def run_train(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "train.py", f"paths.log_dir={tmp_path}", "trainer.accelerator=cpu", *overrides]
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)


def run_dirs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "train" / "runs").iterdir())


def test_default_run_writes_one_complete_run_directory(tmp_path: Path) -> None:
    done = run_train(tmp_path, "trainer.max_epochs=2")
    assert done.returncode == 0, done.stderr
    [run] = run_dirs(tmp_path)
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "completed" and result["epochs"] == 2
    assert result["optimized_metric"]["name"] == "val/loss"
    assert f"val/loss = {result['optimized_metric']['value']:.6g}" in done.stdout
    assert (run / "config.yaml").is_file() and (run / ".hydra" / "overrides.yaml").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_bad_value_exits_1_with_one_message_and_a_failed_record(tmp_path: Path) -> None:
    done = run_train(tmp_path, "optimizer.lr=-1", "print_config=false")
    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert "optimizer.lr=-1 is out of range; it must be > 0, e.g. 1e-3" in output
    assert "Traceback" not in output
    [run] = run_dirs(tmp_path)
    assert json.loads((run / "result.json").read_text())["status"] == "failed"
    assert not (run / "checkpoints").exists()


def test_unknown_option_is_hydras_message_listing_the_options(tmp_path: Path) -> None:
    done = run_train(tmp_path, "optimizer=adamx")
    assert done.returncode == 1
    assert "Could not find 'optimizer/adamx'" in done.stderr and "adamw" in done.stderr
    assert "Traceback" not in done.stderr
