"""A sweep's job processes stop with the sweep (``hydra/launcher=joblib``), not after it.

Joblib's workers are processes of their own: a SIGTERM to the sweep's parent (a scheduler's preemption) used to
end it alone and leave the workers training unsupervised, and a SIGINT to the parent alone waited until joblib was
done. psutil finds the processes the parent started (joblib has no public way to signal its workers).
"""

import contextlib
import os
import signal
import sys
from types import FrameType

import psutil


def _reached_them_already(signum: int) -> bool:
    """Ctrl-C in a terminal signals the whole foreground process group, the workers included: passed on, a
    second SIGINT would make them stop at once, without saving."""
    if signum != signal.SIGINT or not sys.stdin.isatty():
        return False
    with contextlib.suppress(OSError):
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    return False


def _pass_on(signum: int, frame: FrameType | None) -> None:
    workers = psutil.Process().children(recursive=True)
    if not workers:  # no job process (the basic launcher, between jobs): the signal acts as it always did
        signal.signal(signum, signal.SIG_DFL if signum == signal.SIGTERM else signal.default_int_handler)
        os.kill(os.getpid(), signum)
        return
    if not _reached_them_already(signum):
        for worker in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                worker.send_signal(signum)


def stop_workers_with_the_sweep() -> None:
    """In a sweep's parent: SIGTERM or SIGINT reaches every job process. Each job stops as a run does (its state
    saved, its record ``interrupted``) and its stop ends the sweep; the same command continues it."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _pass_on)
