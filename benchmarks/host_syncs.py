"""Host reads per training step of each engine: the GPU syncs that make a step wait for the one before it.

A host read (``.item()``, ``bool(tensor)``, an op whose output size depends on tensor values, such as ``unique``)
stalls Python until the GPU has caught up, so a step can no longer be queued while the previous one runs. Every
such read goes through PyTorch's dispatcher, so it can be counted on any device, the CPU included. Each engine
trains one epoch of ``--short`` and one of ``--long`` batches; the difference in reads, divided by the difference in
optimizer steps, is the number of reads per step, free of the once-per-epoch ones (metrics, logging, checkpoints).

    python -m benchmarks.host_syncs --data-dir ../data                          # mnist_speedrun, both engines
    python -m benchmarks.host_syncs --data-dir ../data --extra callbacks=default  # with the per-step NaN check
"""

import argparse
import json
import logging
import tempfile
import traceback
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.timing import compose_same_work, lightning_only_callbacks
from src.config.compose import compose_run
from src.config.resolvers import register_resolvers
from train import ENGINES, train

# Ops that read a tensor's value on the host, or whose output size depends on tensor values.
HOST_READ_OPS = {
    "_local_scalar_dense",
    "is_nonzero",
    "equal",
    "nonzero",
    "masked_select",
    "_unique2",
    "unique_dim",
    "unique_consecutive",
    "bincount",
    "repeat_interleave",
}
MASK_INDEX_OPS = {"index", "index_put", "index_put_", "_index_put_impl_"}  # a boolean mask index is a nonzero
# Reads that are no GPU sync: F.one_hot checks its class indices on the host on CPU only (CUDA leaves the check to
# its kernel), torchmetrics tests whether outputs are already probabilities with a host read on CPU only, and
# optimizers read their step counts, which they keep on the CPU (unless fused or capturable).
CPU_ONLY_SITES = ("one_hot(", "normalize_logits_if_needed", "_get_value")


def reads_host(op: str, args: tuple) -> bool:
    if op in MASK_INDEX_OPS:
        return any(isinstance(index, torch.Tensor) and index.dtype == torch.bool for index in args[1])
    return op in HOST_READ_OPS


class HostReadCounter(TorchDispatchMode):
    """Counts host reads by the line of Python that made them (skipping those that happen on the CPU only)."""

    def __init__(self) -> None:
        super().__init__()
        self.sites: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if reads_host(func.overloadpacket.__name__, args):
            frames = traceback.extract_stack()[-8:-1]
            if not any(site in f"{f.name} {f.line}" for f in frames for site in CPU_ONLY_SITES):
                caller = ([f for f in frames if "/torch/" not in f.filename] or frames)[-1]  # outside PyTorch if it can
                self.sites[f"{Path(caller.filename).name}:{caller.lineno} {caller.name}"] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.sites.values())


def count_host_reads(overrides: list[str], output_dir: Path) -> tuple[HostReadCounter, int]:
    """The host reads of one ``train`` call on ``overrides`` (composed as ``train.py`` would), and its steps."""
    cfg = compose_same_work(["trainer.limit_val_batches=1", *overrides], output_dir)
    with HostReadCounter() as counter:
        train(cfg)
    return counter, json.loads((output_dir / "result.json").read_text())["global_step"]


def host_reads_per_step(
    overrides: list[str], workdir: Path, short: int = 2, long: int = 12
) -> tuple[float, Counter[str]]:
    """Reads per training step, and the lines that made the extra reads of the longer epoch. The default window of
    10 steps also catches what runs every ``trainer.log_every_n_steps`` (10)."""
    (few, few_steps), (many, many_steps) = (
        count_host_reads([*overrides, "trainer.max_epochs=1", f"trainer.limit_train_batches={batches}"], workdir / name)
        for name, batches in (("short", short), ("long", long))
    )
    if many_steps <= few_steps:
        raise ValueError(
            f"an epoch of {long} batches took {many_steps} steps, one of {short} took {few_steps}: the data has too "
            "few training batches; lower --short and --long, or data.batch_size"
        )
    return (many.total - few.total) / (many_steps - few_steps), many.sites - few.sites


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--experiments", nargs="+", default=["mnist_speedrun"])
    parser.add_argument("--short", type=int, default=2, help="training batches of the short epoch")
    parser.add_argument("--long", type=int, default=12, help="training batches of the long epoch")
    parser.add_argument("--extra", nargs="*", default=["trainer.accelerator=cpu"], help="more overrides")
    args = parser.parse_args()
    register_resolvers()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")

    table = Table(title="Host reads per training step (each one a GPU sync)")
    for column in ("experiment", "engine", "reads / step", "where", "off in both (Lightning-only)"):
        table.add_column(column, justify="right" if column == "reads / step" else "left")
    with tempfile.TemporaryDirectory() as tmp:
        for experiment in args.experiments:
            off = lightning_only_callbacks(
                compose_run([f"experiment={experiment}"], Path(tmp) / experiment / "callbacks")
            )
            for engine in ENGINES:
                overrides = [f"experiment={experiment}", f"engine={engine}", f"paths.data_dir={args.data_dir}"]
                per_step, sites = host_reads_per_step(
                    [*overrides, *args.extra], Path(tmp) / experiment / engine, args.short, args.long
                )
                where = ", ".join(f"{site} ({count})" for site, count in sites.most_common(3)) or "-"
                table.add_row(experiment, engine, f"{per_step:g}", where, ", ".join(off) or "-")
    Console().print(table)
    print(f"overrides: {' '.join(args.extra)}")


if __name__ == "__main__":
    main()
