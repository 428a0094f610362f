"""One way to write a file that readers never see half-written, even after a crash or a kill mid-write; and one way
to find out, before any work, that a directory cannot be written."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """``write`` fills a hidden temporary file beside ``path``, which is flushed to disk and renamed over it; a
    failure removes the temporary file, and at worst (a kill) leaves a ``.*.tmp`` that nothing reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def unwritable(directory: Path) -> OSError | None:
    """Why files cannot be created in ``directory`` (made if need be), or None when they can."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            return None
    except OSError as err:
        return err
