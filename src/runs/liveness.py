"""Whether the process that wrote a ``running`` record still runs: a pid alone is not enough, since pids are reused
(routinely in containers, where every run may be pid 1 or 7), so the record also keeps the process's start time."""

import os
import socket
from pathlib import Path
from typing import Any


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot) and the boot it belongs to; None off Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name, in parentheses, may hold spaces
    return f"{boot}:{fields[19]}"  # field 22 of proc(5); the slice starts at field 3


def process_identity() -> dict[str, Any]:
    """Saved with a running record, so a later run can tell a live run from one that was killed."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "process_start": _start_time(os.getpid())}


def is_alive(record: dict[str, Any]) -> bool:
    """A ``running`` record of this host whose process exists and (where the system tells) started when it did."""
    if record.get("status") != "running" or record.get("host") != socket.gethostname():
        return False
    try:
        pid = int(record["pid"])
        os.kill(pid, 0)
    except (KeyError, TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        pass  # another user's process holds that pid: compare start times below
    recorded, now = record.get("process_start"), _start_time(pid)
    return recorded is None or now is None or recorded == now
