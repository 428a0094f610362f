"""Start-up cost: a run of one batch per split, timed as a user waits for it (the whole command, median of several),
and where its time goes. ``--other`` times another template's command the same way, side by side.

    python -m benchmarks.startup paths.data_dir=../shared/data
    python -m benchmarks.startup paths.data_dir=../shared/data --other-dir ../lightning-hydra-template \
        --other "python src/train.py trainer=cpu trainer.max_epochs=1 +trainer.limit_train_batches=1 \
        +trainer.limit_val_batches=1 +trainer.limit_test_batches=1"
"""

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest.mock import patch

from rich.console import Console
from rich.table import Table

from src.config.resolvers import PROJECT_ROOT

ONE_BATCH = [
    "experiment=mnist_mlp",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "print_config=false",
]


def run_seconds(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def interleaved_medians(commands: dict[str, tuple[list[str], Path]], repeats: int) -> dict[str, float]:
    """The median wall time of each command, run in turns (one of each per round): a machine that speeds up or
    slows down during the measurement shifts every command alike instead of the ones measured last."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, (command, cwd) in commands.items():
            times[name].append(run_seconds(command, cwd))
    return {name: statistics.median(seconds) for name, seconds in times.items()}


def phases_of_one_run(overrides: list[str], workdir: Path) -> dict[str, float]:
    """Seconds per phase of ``train`` in this process (after its imports)."""
    import train as entry
    from src.config import builders
    from src.config.compose import compose_run
    from src.engines import lightning_engine, scratch_engine

    spent: defaultdict[str, float] = defaultdict(float)

    def timed(phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[phase] += time.perf_counter() - start

        return run

    wrapped = {
        (entry, "check_config"): "config checks",
        (builders, "set_up_data"): "data (load, split)",
        (lightning_engine, "publish_confusion_matrix"): "plots",
        (scratch_engine, "publish_confusion_matrix"): "plots",
    }
    cfg = compose_run([*overrides, f"paths.log_dir={workdir}"], workdir / "run")
    with ExitStack() as stack:
        for (module, name), phase in wrapped.items():
            stack.enter_context(patch.object(module, name, timed(phase, getattr(module, name))))
        engines = {name: timed("fit + test (engine)", fit) for name, fit in entry.ENGINES.items()}
        stack.enter_context(patch.dict(entry.ENGINES, engines))
        start = time.perf_counter()
        entry.train(cfg)
        total = time.perf_counter() - start
    spent["fit + test (engine)"] -= spent["plots"]
    spent["the rest (records, model, checkpoints)"] = total - sum(spent.values())
    return dict(spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="added to the one-batch MNIST MLP run, e.g. paths.data_dir=...")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--other", help="another template's command for the same work, timed the same way")
    parser.add_argument("--other-dir", type=Path, default=Path.cwd(), help="where --other runs")
    args = parser.parse_intermixed_args()  # overrides may come before or after the flags

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        ours = [sys.executable, "train.py", *ONE_BATCH, f"paths.log_dir={workdir}", *args.overrides]
        commands = {
            "this template, the whole command": (ours, PROJECT_ROOT),
            "  ... with plots=false": ([*ours, "plots=false"], PROJECT_ROOT),
            "  its imports (Lightning, torch, Hydra, ...)": ([sys.executable, "-c", "import train"], PROJECT_ROOT),
        }
        if args.other:
            commands[f"the other command ({args.other_dir.name})"] = (shlex.split(args.other), args.other_dir)
        medians = interleaved_medians(commands, args.repeats)
        table = Table(title=f"A run of one batch per split, median of {args.repeats}, run in turns (seconds)")
        table.add_column("what")
        table.add_column("seconds", justify="right")
        for name in list(commands)[:3]:
            table.add_row(name, f"{medians[name]:.2f}")
        for phase, seconds in phases_of_one_run([*ONE_BATCH, *args.overrides], workdir).items():
            table.add_row(f"  {phase}", f"{seconds:.2f}")
        for name in list(commands)[3:]:
            table.add_row(name, f"{medians[name]:.2f}")
        Console().print(table)


if __name__ == "__main__":
    main()
