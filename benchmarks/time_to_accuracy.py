r"""Time to accuracy of a recipe: train it once per seed through ``train.train`` and report each run's test accuracy
and wall time, then their mean ± std; with ``--threshold``, also when each run's ``val/acc`` first reached it
(seconds since the run started, read at each validation: a recipe that validates once only reports that once).

An untimed warm-up run first pays the one-off costs (kernels loaded on first use, cuDNN autotuning,
``model.compile=true``), and its extra time over a timed run is reported on its own. Each run's time is split into
the engine's work (data onto the device, fit with validation, test) and the whole ``train`` call (also config
checks, model build, run records). The runs draw no plots (``plots=true`` times them too); a run whose checkpoints
follow no metric tests its final weights in memory, with no checkpoint reloaded.

    python -m benchmarks.time_to_accuracy experiment=cifar10_speedrun paths.data_dir=/root/data --seeds 5 --target 94
    python -m benchmarks.time_to_accuracy experiment=cifar10_speedrun paths.data_dir=/root/data model.compile=true
    python -m benchmarks.time_to_accuracy experiment=cifar10_cpu paths.data_dir=../data --seeds 3 --warmup 0 \
        --target 90 --threshold 85
    python -m benchmarks.time_to_accuracy experiment=cifar10_speedrun --seeds 2 --each "module.test_time_shift=0" \
        "model.channels_last=false"                             # one switch undone at a time, one warm-up for all
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
from contextlib import ExitStack, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

import lightning as L
import torch
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from benchmarks.timing import cpu_name, now
from src.checks.loop_limits import validates_nothing
from src.config import builders
from src.config.builders import build_callbacks
from src.config.compose import compose_run
from src.config.resolvers import register_resolvers
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
    threshold_seconds: float | None = None  # when val/acc first reached --threshold; None: never (or not asked)


class FirstReached(L.Callback):
    """The run's wall time (from ``start``) at the first validation whose ``val/acc`` is at least ``threshold``."""

    def __init__(self, threshold: float, start: float) -> None:
        self.threshold, self.start = threshold, start
        self.seconds: float | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        accuracy = trainer.callback_metrics.get("val/acc")
        if self.seconds is None and not trainer.sanity_checking and float(accuracy or 0) >= self.threshold:
            self.seconds = now() - self.start


def timed(fit: Callable, seconds: list[float]) -> Callable:
    """``fit`` (an engine), appending the wall time of each call to ``seconds``."""

    def run(*args: object, **kwargs: object) -> object:
        start = now()
        result = fit(*args, **kwargs)
        seconds.append(now() - start)
        return result

    return run


def timed_run(overrides: list[str], seed: int, output_dir: Path, threshold: float | None = None) -> Run:
    cfg = compose_run(["plots=false", *overrides, f"seed={seed}"], output_dir)  # drawing is not training
    engine_seconds: list[float] = []
    engines = {name: timed(fit, engine_seconds) for name, fit in ENGINES.items()}
    start = now()
    reached = FirstReached(threshold / 100, start) if threshold is not None else None

    def with_reached(cfg: DictConfig, has_logger: bool) -> list[L.Callback]:
        return [*build_callbacks(cfg, has_logger), *([reached] if reached is not None else [])]

    with ExitStack() as stack:
        stack.enter_context(patch.dict(ENGINES, engines))
        stack.enter_context(patch.object(builders, "build_callbacks", with_reached))
        stack.enter_context(redirect_stdout(io.StringIO()))  # the table alone: no per-run printouts
        _, metrics = train(cfg)
        total = now() - start
    if "test/acc" not in metrics:
        raise SystemExit(f"this recipe logs no test/acc (it logged {sorted(metrics)}): time to accuracy needs one")
    return Run(seed, metrics["test/acc"], engine_seconds[0], total, reached.seconds if reached is not None else None)


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
    parser.add_argument("--threshold", type=float, help="val/acc in percent whose first time to report, e.g. 85")
    parser.add_argument("--quick", action="store_true", help="a few batches per run: a smoke test, not a measurement")
    parser.add_argument(
        "--each",
        nargs="+",
        metavar="OVERRIDES",
        help='variants timed one after another, each a quoted group of overrides ("a=1 b=2"), after one warm-up',
    )
    args = parser.parse_intermixed_args()  # overrides may come before or after the flags
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    register_resolvers()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    overrides = [*args.overrides, *(QUICK if args.quick else [])]

    seeds = range(args.first_seed, args.first_seed + args.seeds)
    variants = [variant.split() for variant in args.each] if args.each else [[]]
    with tempfile.TemporaryDirectory() as tmp:
        for index, variant in enumerate(variants):
            tried = [*overrides, *variant]
            where = Path(tmp) / f"variant{index}"
            if args.threshold is not None and validates_nothing(compose_run(tried, where / "check")):
                parser.error("--threshold times val/acc, but this recipe holds out no validation images (val_size=0)")
            warm = range(args.warmup if index == 0 else 0)  # one warm-up pays the one-off costs for every variant
            warmups = [timed_run(tried, args.first_seed, where / f"warmup{i}") for i in warm]
            runs = [timed_run(tried, seed, where / f"seed{seed}", args.threshold) for seed in seeds]
            print_report(tried, warmups, runs, args.threshold, args.target)


def print_report(
    overrides: list[str], warmups: list[Run], runs: list[Run], threshold: float | None, target: float | None
) -> None:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else cpu_name()
    table = Table(title=f"Time to accuracy: {' '.join(overrides)}", caption=f"{device}, torch {torch.__version__}")
    columns = ["seed", "test acc (%)", "fit + test (s)", "whole run (s)"]
    if threshold is not None:
        columns.append(f"val/acc >= {threshold:g}% after (s)")
    for column in columns:
        table.add_column(column, justify="right")
    rows = [(f"{run.seed} (warm-up)", run) for run in warmups] + [(str(run.seed), run) for run in runs]
    for label, run in rows:
        cells = [label, f"{100 * run.accuracy:.2f}", f"{run.engine_seconds:.3f}", f"{run.total_seconds:.3f}"]
        if threshold is not None:
            cells.append("never" if run.threshold_seconds is None else f"{run.threshold_seconds:.1f}")
        table.add_row(*cells)
    table.add_section()
    accuracies = [100 * run.accuracy for run in runs]
    summary = [
        "mean ± std",
        mean_std(accuracies),
        mean_std([run.engine_seconds for run in runs]),
        mean_std([run.total_seconds for run in runs]),
    ]
    if threshold is not None:
        reached_at = [run.threshold_seconds for run in runs if run.threshold_seconds is not None]
        summary.append(mean_std(reached_at) if len(reached_at) == len(runs) else f"{len(reached_at)}/{len(runs)} runs")
    table.add_row(*summary)
    console = Console()
    console.print(table)
    if warmups:
        extra = warmups[0].total_seconds - statistics.mean(run.total_seconds for run in runs)
        console.print(f"one-off start-up cost (warm-up run minus a timed run): {extra:.3f} s")
    if target is not None:
        reached = sum(accuracy >= target for accuracy in accuracies)
        console.print(f"{reached}/{len(runs)} runs reached {target:.2f}% test accuracy")


if __name__ == "__main__":
    main()
