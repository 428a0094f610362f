"""What identifies the files a data set was read from: their contents, not their path.

``resume=auto`` compares it, so a run on other files (relabelled, or another version) never reuses a result,
while the same files moved elsewhere still do. Hashing a data set takes a fraction of a second; the digests are
remembered per file path, size and modification time, so later runs hash nothing.
"""

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from src.atomic_write import write_atomic

log = logging.getLogger(__name__)

MEMO_FILE = "source-digests.json"


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def data_identity(folder: Path, names: Sequence[str], memo_dir: Path) -> str:
    """One digest over the md5 of each named file in ``folder``."""
    memo_path = memo_dir / MEMO_FILE
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    changed = False
    digests = []
    for name in names:
        path = (folder / name).resolve()
        stat = path.stat()
        key = f"{path}:{stat.st_size}:{stat.st_mtime_ns}"
        if key not in memo:
            memo[key], changed = _md5(path), True
        digests.append(f"{name}:{memo[key]}")
    if changed:
        try:  # a memo only: where it cannot be written, the next run hashes again
            write_atomic(memo_path, lambda file: file.write(json.dumps(memo, indent=1).encode()))
        except OSError as err:
            log.debug("Not remembering source digests in %s: %s", memo_path, err)
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()[:16]
