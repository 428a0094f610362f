"""Time to accuracy of a recipe: train it once per seed through ``train.train`` and report each run's test accuracy
and wall time, then their mean ± std.

An untimed warm-up run first pays the one-off costs (kernels loaded on first use, cuDNN autotuning,
``model.compile=true``), and its extra time over a timed run is reported on its own. Each run's time is split into
the engine's work (data onto the device, fit with validation, test) and the whole ``train`` call (also config
checks, model build, run records).

    python -m benchmarks.time_to_accuracy experiment=cifar10_speedrun paths.data_dir=/root/data --seeds 5 --target 94
    python -m benchmarks.time_to_accuracy experiment=cifar10_speedrun paths.data_dir=/root/data model.compile=true
    python -m benchmarks.time_to_accuracy --quick --seeds 2 experiment=mnist_speedrun paths.data_dir=../data \
        trainer.accelerator=cpu trainer.precision=32-true       # a smoke test on a CPU: the numbers mean nothing
"""

import argparse
import io
import logging
import statistics
import tempfile
import warnings
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

import torch
from rich.console import Console
from rich.table import Table

from benchmarks.runs import compose_run, now
from src.utils.resolvers import register_resolvers
from train import ENGINES, train

# A few batches of everything: checks the wiring on any machine in seconds; the numbers mean nothing.
QUICK = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "data.batch_size=64",
    "data.eval_batch_size=64",
]


@dataclass(frozen=True)
class Run:
    seed: int
    accuracy: float  # test/acc
    engine_seconds: float
    total_seconds: float


def timed(fit: Callable, seconds: list[float]) -> Callable:
    """``fit`` (an engine), appending the wall time of each call to ``seconds``."""

    def run(*args: object) -> object:
        start = now()
        result = fit(*args)
        seconds.append(now() - start)
        return result

    return run


def timed_run(overrides: list[str], seed: int, output_dir: Path) -> Run:
    cfg = compose_run([*overrides, f"seed={seed}"], output_dir)
    engine_seconds: list[float] = []
    engines = {name: timed(fit, engine_seconds) for name, fit in ENGINES.items()}
    with patch.dict(ENGINES, engines), redirect_stdout(io.StringIO()):  # the table alone: no per-run printouts
        start = now()
        _, metrics = train(cfg)
        total = now() - start
    if "test/acc" not in metrics:
        raise SystemExit(f"this recipe logs no test/acc (it logged {sorted(metrics)}): time to accuracy needs one")
    return Run(seed, metrics["test/acc"], engine_seconds[0], total)


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="train.py overrides, e.g. experiment=cifar10_speedrun")
    parser.add_argument("--seeds", type=int, default=5, help="timed runs, with seeds first-seed, first-seed + 1, ...")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (of the first seed)")
    parser.add_argument("--target", type=float, help="test accuracy in percent to count runs against, e.g. 94")
    parser.add_argument("--quick", action="store_true", help="a few batches per run: a smoke test, not a measurement")
    args = parser.parse_intermixed_args()  # overrides may come before or after the flags
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    register_resolvers()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    overrides = [*args.overrides, *(QUICK if args.quick else [])]

    seeds = range(args.first_seed, args.first_seed + args.seeds)
    with tempfile.TemporaryDirectory() as tmp:
        warmups = [timed_run(overrides, args.first_seed, Path(tmp) / f"warmup{i}") for i in range(args.warmup)]
        runs = [timed_run(overrides, seed, Path(tmp) / f"seed{seed}") for seed in seeds]

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    table = Table(title=f"Time to accuracy: {' '.join(overrides)}", caption=f"{device}, torch {torch.__version__}")
    for column in ("seed", "test acc (%)", "fit + test (s)", "whole run (s)"):
        table.add_column(column, justify="right")
    rows = [(f"{run.seed} (warm-up)", run) for run in warmups] + [(str(run.seed), run) for run in runs]
    for label, run in rows:
        table.add_row(label, f"{100 * run.accuracy:.2f}", f"{run.engine_seconds:.3f}", f"{run.total_seconds:.3f}")
    table.add_section()
    accuracies = [100 * run.accuracy for run in runs]
    table.add_row(
        "mean ± std",
        mean_std(accuracies),
        mean_std([run.engine_seconds for run in runs]),
        mean_std([run.total_seconds for run in runs]),
    )
    console = Console()
    console.print(table)
    if warmups:
        extra = warmups[0].total_seconds - statistics.mean(run.total_seconds for run in runs)
        console.print(f"one-off start-up cost (warm-up run minus a timed run): {extra:.3f} s")
    if args.target is not None:
        reached = sum(accuracy >= args.target for accuracy in accuracies)
        console.print(f"{reached}/{len(runs)} runs reached {args.target:.2f}% test accuracy")


if __name__ == "__main__":
    main()
