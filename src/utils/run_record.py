"""``result.json`` in every run directory: a run that did not finish never looks like one that did."""

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write to a temporary file and rename it over the target, so readers never see half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


@contextmanager
def recorded_run(output_dir: Path, write: bool = True) -> Iterator[dict[str, Any]]:
    """Yield the record to fill in; it is saved as ``running``, then ``completed`` or ``failed`` with the reason.
    With ``write=False`` (processes other than rank 0) nothing is written."""
    if not write:
        yield {}
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "result.json"
    record: dict[str, Any] = {"status": "running", "started_at": datetime.now(timezone.utc).isoformat()}
    start = time.perf_counter()
    write_json_atomic(path, record)
    try:
        yield record
    except BaseException as err:
        record.update(status="failed", error=f"{type(err).__name__}: {err}")
        raise
    else:
        record["status"] = "completed"
    finally:
        record["finished_at"] = datetime.now(timezone.utc).isoformat()
        record["wall_time_s"] = round(time.perf_counter() - start, 3)
        write_json_atomic(path, record)
