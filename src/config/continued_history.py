"""A run resumed from another run's checkpoint (``resume=auto``, ``ckpt_path=``) continues that run's curves.

The resumed run has a directory of its own; its trackers take over the earlier run's history up to the resumed step,
so the experiment shows as one run with one unbroken history: TensorBoard and CSV copy the earlier run's entries into
this run (TensorBoard hides any the earlier run logged from the resumed step on), MLflow and W&B log into the same
tracker run (W&B offline: a second folder with the run id of the first, which is copied beside it, so that
``wandb sync`` of this run's folder uploads the whole history into one run).
"""

import csv
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from src.stop_and_resume.checkpoints import read_checkpoint

log = logging.getLogger(__name__)

TENSORBOARD_LOGGER = "lightning.pytorch.loggers.TensorBoardLogger"
MLFLOW_LOGGER = "lightning.pytorch.loggers.MLFlowLogger"
WANDB_LOGGER = "lightning.pytorch.loggers.WandbLogger"


@dataclass(frozen=True)
class History:
    """The run whose checkpoint this run resumed, and the first step this run logs: the earlier run's entries from
    that step on are stale (logged after its checkpoint) and are dropped."""

    run_dir: Path
    first_step: int


def history_to_continue(resume_from: str | None, output_dir: str, engine: str) -> History | None:
    """The history a run resumed from ``resume_from`` continues: none for a checkpoint outside a run's
    ``checkpoints/`` folder, or one of this run's own."""
    if not resume_from:
        return None
    checkpoint = Path(resume_from).resolve()
    run_dir = checkpoint.parent.parent
    own = run_dir == Path(output_dir).resolve()
    if checkpoint.parent.name != "checkpoints" or own or not (run_dir / "result.json").is_file():
        return None
    step = int(read_checkpoint(checkpoint, mmap=True)["global_step"])  # the step alone: no weights read
    # Lightning logs the learning rate at the resumed step itself; the scratch loop logs first at its epoch's end.
    return History(run_dir, step if engine == "lightning" else step + 1)


def continuing_arguments(target: str, node: Any, history: History) -> dict[str, Any]:
    """What a logger's constructor gets besides its config node to continue ``history``."""
    if target == TENSORBOARD_LOGGER:
        return {"purge_step": history.first_step}  # TensorBoard then hides the earlier run's later events
    if target == MLFLOW_LOGGER:
        run_id = _mlflow_run_id(node, history.run_dir)
        return {"run_id": run_id} if run_id else {}
    if target == WANDB_LOGGER:
        run_id = _wandb_run_id(history.run_dir)
        return {"id": run_id, "resume": "allow"} if run_id else {}
    return {}


def copy_history_files(target: str, node: Any, history: History) -> None:
    """The earlier run's TensorBoard event files and W&B offline folder, into this run's, before this run writes:
    TensorBoard reads a folder's files, and ``wandb sync`` uploads offline folders, in the order of their names,
    which start with the time they were written."""
    if rank_zero_only.rank != 0:
        return
    if target == TENSORBOARD_LOGGER:
        here = Path(node.save_dir) / node.name / str(node.version)
        here.mkdir(parents=True, exist_ok=True)
        for events in (history.run_dir / node.name / str(node.version)).glob("events.out.tfevents.*"):
            shutil.copy2(events, here / events.name)
    elif target == WANDB_LOGGER:
        for folder in (history.run_dir / "wandb").glob("offline-run-*"):
            shutil.copytree(folder, Path(node.save_dir) / "wandb" / folder.name, dirs_exist_ok=True)


def continue_csv(logger: CSVLogger, history: History) -> None:
    """The earlier run's rows before the first step this run logs, logged again first in this run's metrics.csv."""
    earlier = history.run_dir / logger.name / str(logger.version) / "metrics.csv"
    if rank_zero_only.rank != 0 or not earlier.is_file():
        return
    with open(earlier, newline="") as f:
        try:
            for row in csv.DictReader(f):
                step = _number(row.pop("step", None))
                values = {key: number for key, value in row.items() if (number := _number(value)) is not None}
                if step is not None and step < history.first_step and values:  # a damaged row has no step
                    logger.log_metrics(values, step=int(step))
        except csv.Error as err:  # a file cut short by a kill: the rows before the damage are the history
            log.warning("%s is damaged (%s): its history is continued up to there", earlier, err)
    logger.save()


def _number(text: Any) -> float | None:
    try:
        return float(text) if text else None
    except (TypeError, ValueError):  # a column of text (a metric logged as a string), a damaged row: not a curve
        return None


def continue_logged(loggers: list[Logger], history: History) -> None:
    for logger in loggers:
        if isinstance(logger, CSVLogger):
            continue_csv(logger, history)


def _mlflow_run_id(node: Any, run_dir: Path) -> str | None:
    """The MLflow run the earlier run logged to: named after its directory, in this run's experiment."""
    import mlflow  # the MLflow extra: only runs that log to it get here

    client = mlflow.MlflowClient(tracking_uri=node.tracking_uri)
    experiment = client.get_experiment_by_name(node.experiment_name)
    if experiment is None:
        return None
    named = f"tags.`mlflow.runName` = '{run_dir}'"
    runs = client.search_runs([experiment.experiment_id], filter_string=named, max_results=1)
    return runs[0].info.run_id if runs else None


def _wandb_run_id(run_dir: Path) -> str | None:
    """The W&B run id of the earlier run's offline folder, from the name of its log (``run-<id>.wandb``)."""
    logs = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    return logs[-1].stem.removeprefix("run-") if logs else None
