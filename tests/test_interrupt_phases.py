"""The fault matrix: SIGTERM and Ctrl-C in every phase of a run, and kill -9 at several points, in both engines.
Each interrupted run must say so in its record and resume to the weights and metrics of a run never interrupted."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from src.config.resolvers import PROJECT_ROOT
from src.datamodules.fake_files import write_mnist
from src.errors import RunInterruptedError
from tests import phase_hooks
from tests.conftest import compose_train_config, read_result
from tests.phase_hooks import at_phase, send
from tests.test_fault_injection import RUN, net_weights
from train import train

MATRIX = [*RUN, "trainer.max_epochs=3"]
ON_MNIST = [o for o in MATRIX if o not in ("data=xor_clouds", "data.n=500")]  # tiny files in the official format
PHASES = {
    "lightning": ("sanity", "training", "validation", "testing"),
    "scratch": ("training", "validation", "testing"),
}
CASES = [(engine, phase) for engine, phases in PHASES.items() for phase in phases]
SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
METRICS = ("train/loss", "val/loss", "test/loss", "test/acc")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    """The record and last weights of a run never interrupted, per engine and data, computed once."""
    results = {}

    def get(engine: str, overrides: list[str]) -> tuple[dict, dict[str, torch.Tensor]]:
        key = (engine, *overrides)
        if key not in results:
            cfg = compose_train_config([*overrides, f"engine={engine}"], tmp_path_factory.mktemp("ref") / "r")
            train(cfg)
            results[key] = read_result(cfg), net_weights(Path(cfg.paths.output_dir))
        return results[key]

    return get


def config(log_dir: Path, name: str, overrides: list[str], *extra: str) -> DictConfig:
    """The config ``python train.py paths.log_dir=<log_dir> ...`` runs, in the run directory ``name``."""
    cfg = compose_train_config([*overrides, *extra], log_dir / "train" / "runs" / name)
    cfg.paths.log_dir = str(log_dir)
    return cfg


def assert_resumes_to_the_uninterrupted_result(log_dir: Path, uninterrupted, engine: str, overrides: list[str]) -> dict:
    resumed = config(log_dir, "resumed", overrides, f"engine={engine}", "resume=auto")
    train(resumed)
    result = read_result(resumed)
    reference, reference_weights = uninterrupted(engine, overrides)
    assert result["status"] == "completed" and result["global_step"] == reference["global_step"]
    for name, value in net_weights(Path(resumed.paths.output_dir)).items():
        torch.testing.assert_close(value, reference_weights[name], rtol=0, atol=0)
    for name in METRICS:
        assert result["metrics"][name] == pytest.approx(reference["metrics"][name], rel=1e-6), name
    return result


@pytest.mark.parametrize("signal_name", SIGNALS)
@pytest.mark.parametrize(("engine", "phase"), CASES, ids=[f"{e}-{p}" for e, p in CASES])
def test_signal_in_any_phase_is_recorded_interrupted_and_resumes_to_the_uninterrupted_result(
    tmp_path: Path, monkeypatch, uninterrupted, engine: str, phase: str, signal_name: str
) -> None:
    log_dir = tmp_path / "logs"
    stopped = config(log_dir, "stopped", MATRIX, f"engine={engine}")
    at_phase(phase, send(SIGNALS[signal_name]), monkeypatch.setattr)
    with pytest.raises(RunInterruptedError, match=rf"^{signal_name}.*To resume, run: "):
        train(stopped)
    monkeypatch.undo()
    record = read_result(stopped)
    assert record["status"] == "interrupted" and record["error"].startswith(signal_name)
    assert_resumes_to_the_uninterrupted_result(log_dir, uninterrupted, engine, MATRIX)


@pytest.mark.parametrize("engine", PHASES)
def test_a_signal_inside_a_window_of_accumulated_gradients_stops_after_it_and_resumes_to_the_uninterrupted_result(
    tmp_path: Path, monkeypatch, uninterrupted, engine: str
) -> None:
    accumulating = [*MATRIX, "trainer.accumulate_grad_batches=2"]
    monkeypatch.setattr(phase_hooks, "TRAINING_CALL", 71)  # the first batch of a window of two, mid-epoch
    stopped = config(tmp_path / "logs", "stopped", accumulating, f"engine={engine}")
    at_phase("training", send(signal.SIGTERM), monkeypatch.setattr)
    with pytest.raises(RunInterruptedError, match=r"^SIGTERM"):
        train(stopped)
    monkeypatch.undo()
    assert_resumes_to_the_uninterrupted_result(tmp_path / "logs", uninterrupted, engine, accumulating)


@pytest.mark.parametrize("phase", ["training", "sanity"])
def test_a_signal_before_a_validation_inside_a_window_waits_for_the_window_after_it(
    tmp_path: Path, monkeypatch, uninterrupted, phase: str
) -> None:
    # Lightning validates every 20 batches; the signal comes in batch 20 of an epoch, 2 batches into a window of 3,
    # or in the sanity check, before the first window.
    accumulating = [*MATRIX, "trainer.accumulate_grad_batches=3", "trainer.val_check_interval=20"]
    stopped = config(tmp_path / "logs", "stopped", accumulating)
    at_phase(phase, send(signal.SIGTERM), monkeypatch.setattr)
    with pytest.raises(RunInterruptedError, match=r"^SIGTERM"):
        train(stopped)
    monkeypatch.undo()
    assert_resumes_to_the_uninterrupted_result(tmp_path / "logs", uninterrupted, "lightning", accumulating)


@pytest.mark.parametrize("signal_name", SIGNALS)
@pytest.mark.parametrize("engine", PHASES)
def test_signal_during_the_first_decode_leaves_no_cache_and_resumes(
    tmp_path: Path, monkeypatch, uninterrupted, engine: str, signal_name: str
) -> None:
    write_mnist(tmp_path / "files", n_train=120, n_test=20)
    data = ["data=mnist", f"paths.data_dir={tmp_path / 'files'}", "data.verify_checksums=false", "data.val_size=10"]
    log_dir = tmp_path / "logs"
    stopped = config(log_dir, "stopped", [*data, *ON_MNIST], f"engine={engine}")
    at_phase("decode", send(SIGNALS[signal_name]), monkeypatch.setattr)
    with pytest.raises(RunInterruptedError, match=rf"^{signal_name}: stopped at once"):
        train(stopped)
    monkeypatch.undo()
    assert read_result(stopped)["status"] == "interrupted"
    cache = Path(stopped.paths.cache_dir)
    assert not list(cache.glob("mnist-*")) and not list(cache.glob(".*.tmp"))
    assert_resumes_to_the_uninterrupted_result(log_dir, uninterrupted, engine, [*data, *ON_MNIST])


def test_sigterm_while_the_command_says_how_its_run_ended_waits_for_that_line(tmp_path: Path) -> None:
    # A launcher (torchrun) sends SIGTERM to every process once one fails: the others are saying why by then.
    refused = ["trainer.max_epochs=-1", f"paths.log_dir={tmp_path}"]
    command = [sys.executable, "-m", "tests.phase_hooks", "report", "SIGTERM", *refused]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    said = done.stdout + done.stderr
    assert done.returncode == -signal.SIGTERM  # stopped, as the launcher asked
    assert "trainer.max_epochs=-1 is out of range; it must be >= 1" in said and "Traceback" not in said, said


@pytest.mark.parametrize("phase", ["training", "validation", "testing"])
def test_kill_9_in_any_phase_leaves_a_run_that_resumes_to_the_uninterrupted_result(
    tmp_path: Path, uninterrupted, phase: str
) -> None:
    log_dir = tmp_path / "logs"
    command = [sys.executable, "-m", "tests.phase_hooks", phase, "SIGKILL", f"paths.log_dir={log_dir}", *MATRIX]
    killed = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:] + killed.stderr[-2000:]
    [run] = (log_dir / "train" / "runs").iterdir()
    assert json.loads((run / "result.json").read_text())["status"] == "running"  # of a process that is gone
    result = assert_resumes_to_the_uninterrupted_result(log_dir, uninterrupted, "lightning", MATRIX)
    assert result["resumed_from"] == str(run / "checkpoints" / "last.ckpt")
