"""Compose configs exactly as ``train.py`` does, with the run directory moved under pytest's tmp_path."""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import DictConfig, open_dict

from src.config.compose import compose_run
from src.config.resolvers import PROJECT_ROOT, register_resolvers
from src.datamodules.fake_files import write_cifar10, write_mnist

CONFIG_DIR = str(PROJECT_ROOT / "configs")

register_resolvers()

# pytest-xdist runs one worker per core: each worker, and every process a test starts, uses one thread, or the
# workers' thread pools oversubscribe the cores several times over.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


def compose_train_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """The config ``python train.py <overrides>`` would run on the CPU, writing to ``output_dir``, with its logs and
    cache beside it."""
    cfg = compose_run(["trainer.accelerator=cpu", *overrides], output_dir)
    with open_dict(cfg):
        cfg.paths.log_dir = str(output_dir.parent / "logs")
        cfg.paths.cache_dir = str(output_dir.parent / "cache")
    return cfg


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    counter = iter(range(1000))

    def make(*overrides: str) -> DictConfig:
        return compose_train_config(list(overrides), tmp_path / f"run{next(counter)}")

    return make


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny MNIST and CIFAR-10 files in the official formats (60 images each, none of the official checksums)."""
    data = tmp_path_factory.mktemp("data")
    write_mnist(data)
    write_cifar10(data)
    return data


def read_result(cfg: DictConfig) -> dict[str, Any]:
    return json.loads((Path(cfg.paths.output_dir) / "result.json").read_text())


REAL_DATA_DIR = Path(os.environ.get("REAL_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))
needs_mnist = pytest.mark.skipif(
    not (REAL_DATA_DIR / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"real MNIST files not in {REAL_DATA_DIR} (set REAL_DATA_DIR)",
)
needs_cifar10 = pytest.mark.skipif(
    not (REAL_DATA_DIR / "cifar-10-batches-py" / "test_batch").is_file(),
    reason=f"real CIFAR-10 files not in {REAL_DATA_DIR} (set REAL_DATA_DIR)",
)


# Every run writes into its own directory (pytest's tmp_path here): a file that appears in the repository during the
# suite was written outside one, and fails the session.
HOUSEKEEPING = (".pytest_cache/", ".ruff_cache/", ".venv/", "__pycache__/", ".egg-info/")


def _repository_entries() -> set[str]:
    listed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--ignored=matching"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    return {line[3:] for line in listed if line[:2] in ("??", "!!") and not line.endswith(HOUSEKEEPING)}


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # the controller, or a run without xdist
        session.config.stash[ENTRIES_BEFORE] = _repository_entries()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput") or ENTRIES_BEFORE not in session.config.stash:
        return
    written = sorted(_repository_entries() - session.config.stash[ENTRIES_BEFORE])
    if written:
        print(f"\nFiles written outside a run directory, into the repository: {', '.join(written)}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


ENTRIES_BEFORE = pytest.StashKey[set[str]]()
