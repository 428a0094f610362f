"""A run interrupted and resumed (resume=auto) shows as one run with one unbroken history in every tracker, in both
engines: TensorBoard's event reader, the CSV file and the MLflow client read back the steps an uninterrupted run
logs, each once; W&B's offline folders share one run id."""

import csv
import signal
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.errors import RunInterruptedError
from tests.conftest import compose_train_config, read_result
from tests.phase_hooks import at_phase, send
from tests.test_fault_injection import RUN
from train import ENGINES, train

mlflow = pytest.importorskip("mlflow", reason='the MLflow extra: pip install -e ".[mlflow]"')
pytest.importorskip("wandb", reason='the W&B extra: pip install -e ".[wandb]"')

MATRIX = [*RUN, "trainer.max_epochs=3", "print_config=false"]
EVERY_TRACKER = "logger=[csv,tensorboard,mlflow,wandb]"


def run(log_dir: Path, name: str, *overrides: str):
    cfg = compose_train_config([*MATRIX, *overrides], log_dir / "train" / "runs" / name)
    cfg.paths.log_dir = str(log_dir)
    return cfg


def tensorboard_steps(run_dir: Path, tag: str) -> list[int]:
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


def csv_steps(run_dir: Path, column: str) -> list[int]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return [int(row["step"]) for row in csv.DictReader(f) if row.get(column)]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_resumed_run_continues_the_curves_of_the_run_it_resumes_in_every_tracker(
    tmp_path: Path, monkeypatch, engine: str
) -> None:
    for variable in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_SILENT"):
        monkeypatch.setenv(variable, "")  # the runs set them; restored after the test
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    reference = run(tmp_path / "reference", "whole", f"engine={engine}", "logger=[csv,tensorboard]")
    train(reference)
    whole = Path(reference.paths.output_dir)

    log_dir = tmp_path / "logs"
    stopped = run(log_dir, "stopped", f"engine={engine}", EVERY_TRACKER)
    with monkeypatch.context() as patch:
        at_phase("training", send(signal.SIGTERM), patch.setattr)  # mid second epoch
        with pytest.raises(RunInterruptedError):
            train(stopped)
    resumed = run(log_dir, "resumed", f"engine={engine}", EVERY_TRACKER, "resume=auto")
    train(resumed)
    assert read_result(resumed)["resumed_from"].startswith(stopped.paths.output_dir)
    here = Path(resumed.paths.output_dir)

    for column in ("val/loss", "train/loss"):
        assert csv_steps(here, column) == csv_steps(whole, column) and len(csv_steps(whole, column)) == 3
        assert sorted(tensorboard_steps(here, column)) == sorted(tensorboard_steps(whole, column))
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{log_dir}/mlflow.db")
    [tracked] = client.search_runs([client.get_experiment_by_name("train").experiment_id])  # one run, not two
    assert tracked.info.status == "FINISHED"
    history = sorted(metric.step for metric in client.get_metric_history(tracked.info.run_id, "val/loss"))
    assert history == csv_steps(whole, "val/loss")  # each epoch once: nothing missing or repeated at the stop
    logs = sorted((here / "wandb").glob("offline-run-*/run-*.wandb"))  # the earlier run's, copied, and this one's
    assert len(logs) == 2 and len({log.name for log in logs}) == 1  # run-<id>.wandb: one W&B run


def test_a_damaged_history_is_continued_up_to_the_damage(tmp_path: Path, monkeypatch) -> None:
    log_dir = tmp_path / "logs"
    stopped = run(log_dir, "stopped", "engine=scratch", "logger=csv")
    with monkeypatch.context() as patch:
        at_phase("training", send(signal.SIGTERM), patch.setattr)
        with pytest.raises(RunInterruptedError):
            train(stopped)
    with open(Path(stopped.paths.output_dir) / "csv" / "metrics.csv", "a") as f:
        f.write('garbage,"\n3')  # a row cut short by a kill
    resumed = run(log_dir, "resumed", "engine=scratch", "logger=csv", "resume=auto")
    train(resumed)
    assert read_result(resumed)["status"] == "completed"
    assert csv_steps(Path(resumed.paths.output_dir), "val/loss") == [50, 100, 150]
