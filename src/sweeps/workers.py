"""A sweep's job processes stop with the sweep (``hydra/launcher=joblib``), not after it.

Joblib's workers are processes of their own: a SIGTERM to the sweep's parent (a scheduler's preemption) used to
end it alone and leave the workers training unsupervised, and a SIGINT to the parent alone waited until joblib was
done. This Hydra callback passes the signal on to the job processes (psutil finds them: joblib has no public way),
waits until each running job has saved its state, and ends the sweep; no queued job starts.
"""

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import psutil
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

STOP_TIMEOUT_S = 300  # for the running jobs to finish their step and write their checkpoint


def _reached_them_already(signum: int) -> bool:
    """Ctrl-C in a terminal signals the whole foreground process group, the workers included: passed on, a
    second SIGINT would make them stop at once, without saving."""
    if signum != signal.SIGINT or not sys.stdin.isatty():
        return False
    with contextlib.suppress(OSError):
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    return False


def _running_pids(sweep_dir: Path) -> set[int]:
    """The processes that job records say are running a job, among those still alive (a killed one never says)."""
    pids = set()
    for path in sweep_dir.glob("*/result.json"):
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(path.read_text())
            if record.get("status") == "running" and psutil.pid_exists(record.get("pid", -1)):
                pids.add(record["pid"])
    return pids


class StopJobsWithTheSweep(Callback):
    """Installed when a multirun starts: SIGTERM or SIGINT to the sweep's parent reaches its job processes."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop_jobs)

    def _stop_jobs(self, signum: int, frame: FrameType | None) -> None:
        workers = psutil.Process().children()
        if not workers:  # no job process (the basic launcher, between jobs): the signal acts as it always did
            signal.signal(signum, signal.SIG_DFL if signum == signal.SIGTERM else signal.default_int_handler)
            os.kill(os.getpid(), signum)
            return
        # Only the workers running a job: an idle worker (or joblib's resource tracker) stopped by the signal breaks
        # the pool, and joblib then kills the others in the middle of saving their state.
        pids = {worker.pid for worker in workers} & _running_pids(self.sweep_dir)
        if not _reached_them_already(signum):
            for worker in workers:
                if worker.pid in pids:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        worker.send_signal(signum)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while pids & _running_pids(self.sweep_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        raise SystemExit(0)  # as a stopped run: each job saved its state; the same command continues the sweep
