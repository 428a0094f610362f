"""``result.json`` in every run directory: a run that did not finish never looks like one that did."""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from src.atomic_write import write_atomic
from src.errors import RunInterruptedError, TrialPrunedError


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, lambda file: file.write(json.dumps(data, indent=2, default=str).encode()))


class RunRecord(dict):
    """The record's fields; ``save()`` writes them now (rank 0 only), the context manager at the end."""

    def __init__(self, path: Path | None, **fields: Any) -> None:
        super().__init__(**fields)
        self.path = path

    def save(self) -> None:
        if self.path is not None:
            write_json_atomic(self.path, self)

    def leave_unwritten(self) -> None:
        """Keep the record already in the directory as it is: this process adds nothing to it."""
        self.path = None


@contextmanager
def recorded_run(output_dir: Path, write: bool = True) -> Iterator[RunRecord]:
    """Yield the record to fill in; the caller saves it as ``running`` once it knows what the run continues (until
    then an earlier run's record in this directory stays as it was), and it ends ``completed``, ``interrupted``,
    ``pruned`` (by an Optuna pruner) or ``failed``, with the reason. With ``write=False`` (processes other than
    rank 0) nothing is written."""
    if write:
        output_dir.mkdir(parents=True, exist_ok=True)
    record = RunRecord(
        output_dir / "result.json" if write else None,
        status="running",
        started_at=datetime.now(timezone.utc).isoformat(),
    )
    start = time.perf_counter()
    try:
        yield record
    except (RunInterruptedError, KeyboardInterrupt) as err:
        record.update(status="interrupted", error=str(err) or "KeyboardInterrupt")
        raise
    except TrialPrunedError as err:
        record.update(status="pruned", error=str(err))
        raise
    except BaseException as err:
        record.update(status="failed", error=f"{type(err).__name__}: {err}")
        raise
    else:
        record["status"] = "completed"
    finally:
        record["finished_at"] = datetime.now(timezone.utc).isoformat()
        record["wall_time_s"] = round(time.perf_counter() - start, 3)
        record.save()
