"""The notebooks of the learning path run top to bottom, and are committed without outputs."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from src.config.resolvers import PROJECT_ROOT

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 60


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_without_errors(path: Path) -> None:
    """Executed in memory in a fresh python3 kernel started in notebooks/ (where Jupyter starts it); the kernel
    inherits the environment, so ``REAL_DATA_DIR`` reaches the notebooks as it reaches the tests."""
    notebook = nbformat.read(path, as_version=4)
    files_before = sorted(NOTEBOOK_DIR.rglob("*"))
    client = NotebookClient(
        notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    client.execute()  # raises CellExecutionError on any error; the kernel inherits OMP_NUM_THREADS=1 (conftest)
    assert sorted(NOTEBOOK_DIR.rglob("*")) == files_before, "the notebook wrote into notebooks/; use a temporary dir"


def test_committed_notebooks_have_no_outputs_or_execution_counts() -> None:
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"
    saved_with_outputs = [
        f"{path.name} cell {index}"
        for path in NOTEBOOKS
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not saved_with_outputs, (
        f"saved with outputs or execution counts: {', '.join(saved_with_outputs)}; "
        "strip them with `pre-commit run nbstripout --all-files` (`pre-commit install` does it on every commit)"
    )
