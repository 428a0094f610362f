"""Wall time per epoch of the Lightning engine vs the hand-written loop on the same work.

Each engine trains the same recipe for 1 and for ``1 + epochs`` epochs; the difference divided by ``epochs`` is the
time of one more epoch (training + validation), free of start-up and testing. One untimed run per engine comes
first (CUDA start-up, cuDNN autotuning, compilation land there), then repeats alternate the engines; medians and
their ratio are printed, or "noise" where the extra epochs took no measurable time (raise ``--epochs``).

    python -m benchmarks.engine_epoch_time --data-dir ../data                       # MNIST MLP and CNN, CPU
    python -m benchmarks.engine_epoch_time --data-dir /root/data --extra trainer=gpu trainer.precision=16-mixed
"""

import argparse
import logging
import statistics
import tempfile
import warnings
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from benchmarks.timing import compose_same_work, lightning_only_callbacks, now
from src.config.compose import compose_run
from src.config.resolvers import register_resolvers
from train import train


def timed_run(overrides: list[str], output_dir: Path) -> float:
    cfg = compose_same_work(overrides, output_dir)
    start = now()
    train(cfg)
    return now() - start


def seconds_per_epoch(engine: str, overrides: list[str], epochs: int, workdir: Path, run: int) -> float:
    base = [f"engine={engine}", *overrides]
    short = timed_run([*base, "trainer.max_epochs=1"], workdir / f"{engine}-{run}-short")
    long = timed_run([*base, f"trainer.max_epochs={1 + epochs}"], workdir / f"{engine}-{run}-long")
    return (long - short) / epochs


def seconds(median: float) -> str:
    """A time per epoch, or "noise" when the extra epochs were lost in the run-to-run spread."""
    return f"{median:.3f}" if median > 0 else "noise"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--experiments", nargs="+", default=["mnist_mlp", "mnist_cnn"])
    parser.add_argument("--epochs", type=int, default=2, help="extra epochs timed per run")
    parser.add_argument("--batches", type=int, default=100, help="training batches per epoch (limit_train_batches)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--extra", nargs="*", default=["trainer.accelerator=cpu"], help="more overrides")
    args = parser.parse_args()
    register_resolvers()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")

    table = Table(title=f"Seconds per epoch ({args.batches} training batches + validation), median of {args.repeats}")
    columns = ("experiment", "lightning", "scratch", "lightning / scratch", "off in both (Lightning-only)")
    for column in columns:
        table.add_column(column, justify="right" if column in columns[1:4] else "left")
    with tempfile.TemporaryDirectory() as tmp:
        for experiment in args.experiments:
            overrides = [
                f"experiment={experiment}",
                f"paths.data_dir={args.data_dir}",
                f"trainer.limit_train_batches={args.batches}",
                *args.extra,
            ]
            times: dict[str, list[float]] = {"lightning": [], "scratch": []}
            for engine in times:  # warm-up, untimed
                timed_run([f"engine={engine}", *overrides, "trainer.max_epochs=1"], Path(tmp) / f"{engine}-warm-up")
            for run in range(args.repeats):
                for engine in times:
                    times[engine].append(seconds_per_epoch(engine, overrides, args.epochs, Path(tmp), run))
            lit, raw = statistics.median(times["lightning"]), statistics.median(times["scratch"])
            off = lightning_only_callbacks(compose_run(overrides, Path(tmp) / f"{experiment}-callbacks"))
            ratio = f"{lit / raw:.3f}" if lit > 0 and raw > 0 else "-"
            table.add_row(experiment, seconds(lit), seconds(raw), ratio, ", ".join(off) or "-")
    Console().print(table)
    print(f"overrides: {' '.join(args.extra)}; torch {torch.__version__}, {torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
