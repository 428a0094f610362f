"""What each engine launches per training step, against a bare loop of the same model, optimizer, loss and data.

A GPU runs small kernels as fast as Python queues them, so a step whose kernels are small costs what it takes to
launch them: the number of ATen ops and the Python time around them. Both show on the CPU. Ops are counted through
PyTorch's dispatcher, forward and backward; each engine, and the bare loop below, trains ``--short`` and ``--long``
batches, and the difference divided by the difference in optimizer steps is per step, free of once-per-epoch work
(validation, logging, checkpoints). Python time is timed the same way, after an untimed warm-up, on a model too
small to compute (one linear unit, batch 2) over ``--timed-steps`` more steps, median of ``--repeats``.

    python -m benchmarks.step_cost --data-dir ../shared/data
    python -m benchmarks.step_cost --data-dir ../shared/data --recipes headline --extra trainer.precision=32-true
"""

import argparse
import gc
import itertools
import json
import logging
import statistics
import tempfile
import time
import warnings
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning import LightningDataModule
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.host_syncs import HOST_READ_OPS
from benchmarks.timing import compose_same_work, cpu_name
from src.config import builders
from src.config.resolvers import register_resolvers
from src.training.epoch_metrics import UPDATE_EVERY
from train import ENGINES, train

RECIPES = {
    "xor": ["data.n=2000"],  # the defaults, an MLP on noisy XOR, with the batches --long asks for (50, not 25)
    "headline": ["model=cnn", "data=cifar10", "trainer.precision=16-mixed"],
    "speedrun": ["experiment=cifar10_speedrun"],
}
TINY = ["model=perceptron", "data=linear", "data.batch_size=2", "data.n=4000"]  # Python's cost, not compute


class OpCounter(TorchDispatchMode):
    """ATen ops by name, as the dispatcher sees them below autograd (forward and backward alike)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def recipe_parts(cfg: DictConfig) -> tuple[LightningDataModule, torch.nn.Module, torch.nn.Module]:
    """The recipe's data module (set up), network (initialized from the data) and loss, as train.py builds them."""
    datamodule = builders.build_datamodule(cfg)
    builders.set_up_data(datamodule)
    net = builders.build_model(cfg)
    builders.init_from_data(net, datamodule)
    return datamodule, net, builders.build_loss_and_metrics(cfg.module).loss


def bare_loop(cfg: DictConfig, batches: int) -> int:
    """The reference: the recipe's network, optimizer, loss and training batches, and nothing else; returns steps."""
    datamodule, net, loss_of = recipe_parts(cfg)
    optimizer = instantiate(cfg.optimizer)(net.parameters())
    mixed = str(cfg.trainer.precision) in ("16-mixed", "bf16-mixed")  # bfloat16 autocast on the CPU
    net.train()
    steps = 0
    for x, y in itertools.islice(datamodule.train_dataloader(), batches):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed):
            loss = loss_of(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    return steps


class BareLightningModule(L.LightningModule):
    """Lightning's own loop as the reference for the Lightning engine: the bare loop's step as a LightningModule."""

    def __init__(self, net: torch.nn.Module, loss_of: torch.nn.Module, make_optimizer: Any) -> None:
        super().__init__()
        self.net, self.loss_of, self.make_optimizer = net, loss_of, make_optimizer

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return self.loss_of(self.net(x), y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.training_step(batch, batch_idx)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.make_optimizer(self.parameters())


def bare_lightning(cfg: DictConfig, batches: int) -> int:
    """:func:`bare_loop`'s work run by a Lightning Trainer with no callbacks, logger or progress bar, as the engine
    runs it otherwise: fed by the recipe's data module (Lightning looks up its batch hooks every step), with the
    recipe's validation batches (Lightning asks every step whether to validate); returns steps."""
    datamodule, net, loss_of = recipe_parts(cfg)
    module = BareLightningModule(net, loss_of, instantiate(cfg.optimizer))
    trainer = L.Trainer(
        accelerator=cfg.trainer.accelerator,
        precision=cfg.trainer.precision,
        max_epochs=1,
        limit_train_batches=batches,
        limit_val_batches=cfg.trainer.limit_val_batches,
        log_every_n_steps=cfg.trainer.log_every_n_steps,
        logger=False,
        callbacks=[],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=cfg.paths.output_dir,
    )
    trainer.fit(module, datamodule=datamodule)
    return trainer.global_step


def one_epoch(
    engine: str, overrides: list[str], batches: int, output_dir: Path, count: bool
) -> tuple[Counter[str], float, int]:
    """Ops (when counted: counting slows Python down), wall seconds and optimizer steps of one epoch of ``batches``
    training batches."""
    limits = ["trainer.max_epochs=1", f"trainer.limit_train_batches={batches}", "trainer.limit_val_batches=1"]
    cfg = compose_same_work([*limits, f"engine={'lightning' if engine in BARE else engine}", *overrides], output_dir)
    counter = OpCounter()
    with counter if count else nullcontext():
        start = time.perf_counter()
        if engine in BARE:
            steps = BARE[engine](cfg, batches)
        else:
            train(cfg)
            steps = json.loads((output_dir / "result.json").read_text())["global_step"]
        seconds = time.perf_counter() - start
    return counter.ops, seconds, steps


BARE = {"bare": bare_loop, "bare lightning": bare_lightning}  # the references, written here


def cache_data(overrides: list[str], output_dir: Path) -> int:
    """Decode and cache the recipe's data set, as its first run would; returns its number of training batches."""
    datamodule = builders.build_datamodule(compose_same_work(overrides, output_dir))
    builders.set_up_data(datamodule)
    return len(datamodule.train_dataloader())


def per_step(
    engine: str, overrides: list[str], workdir: Path, short: int, long: int, count: bool = True
) -> tuple[Counter[str], float]:
    """Ops per step by name (when counted), and wall seconds per step, from the difference of a long and a short
    epoch."""
    available = cache_data(overrides, workdir / f"{engine}-data")  # else the first epoch counts decoding it
    if available < long:
        raise SystemExit(f"the data has {available} training batches, fewer than --long={long}: lower it")
    few, few_seconds, few_steps = one_epoch(engine, overrides, short, workdir / f"{engine}-short", count)
    many, many_seconds, many_steps = one_epoch(engine, overrides, long, workdir / f"{engine}-long", count)
    if many_steps <= few_steps:
        raise SystemExit(f"{long} batches took no more steps than {short}: the data has too few training batches")
    steps = many_steps - few_steps
    ops = Counter({op: (many[op] - few[op]) / steps for op in many if many[op] != few[op]})
    return ops, (many_seconds - few_seconds) / steps


def python_seconds(engines: list[str], workdir: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    """Seconds per step of each engine on :data:`TINY`, once per repeat, the engines interleaved."""
    tiny = [*TINY, "trainer.accelerator=cpu"]
    for engine in engines:  # warm-up, untimed: first calls, lazy imports
        one_epoch(engine, tiny, args.short, workdir / f"warm-up-{engine}", count=False)
    gc.collect()
    gc.freeze()  # what the counted runs left is no longer scanned at each collection, as train.py does with imports
    seconds: dict[str, list[float]] = {engine: [] for engine in engines}
    for repeat in range(args.repeats):
        for engine in engines:
            long = args.short + args.timed_steps
            seconds[engine].append(per_step(engine, tiny, workdir / f"tiny{repeat}", args.short, long, count=False)[1])
    return seconds


def host_reads(ops: Counter[str]) -> float:
    """Ops per step that read a tensor on the host (a GPU sync), by name: ``.item()``, ``nonzero``, ..."""
    return sum(count for op, count in ops.items() if op in HOST_READ_OPS)


def ops_table(counted: dict[str, dict[str, Counter[str]]]) -> Table:
    table = Table(title="ATen ops per training step (forward, backward, optimizer; CPU dispatch)")
    columns = ("recipe", "engine", "ops / step", "/ bare", "/ bare lightning", "host reads / step", "most frequent")
    for column in columns:
        table.add_column(column, justify="left" if column in ("recipe", "engine", "most frequent") else "right")
    for recipe, by_engine in counted.items():
        totals = {engine: sum(ops.values()) for engine, ops in by_engine.items()}
        for engine, ops in by_engine.items():
            common = ", ".join(f"{op} {n:g}" for op, n in ops.most_common(3))
            total = totals[engine]
            versus = f"{total / totals['bare lightning']:.2f}" if engine == "lightning" else ""
            cells = [f"{total:g}", f"{total / totals['bare']:.2f}", versus, f"{host_reads(ops):g}", common]
            table.add_row(recipe, engine, *cells)
    return table


def python_table(seconds: dict[str, list[float]], repeats: int) -> Table:
    table = Table(title=f"Python time per step, {' '.join(TINY)}: median of {repeats}")
    for column in ("engine", "ms / step", "/ bare", "/ bare lightning"):
        table.add_column(column, justify="left" if column == "engine" else "right")
    ms = {engine: 1000 * statistics.median(values) for engine, values in seconds.items()}

    def ratio(engine: str, reference: str) -> str:  # "-" when lost in the run-to-run spread: raise --timed-steps
        return f"{ms[engine] / ms[reference]:.2f}" if ms[engine] > 0 and ms[reference] > 0 else "-"

    for engine, value in ms.items():
        versus = ratio(engine, "bare lightning") if engine == "lightning" else ""
        table.add_row(engine, f"{value:.3f}" if value > 0 else "noise", ratio(engine, "bare"), versus)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="holds cifar-10-batches-py/ (headline and speedrun)")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--short", type=int, default=2, help="training batches of the short epoch")
    parser.add_argument("--long", type=int, help="training batches of the long epoch (default: one metric update more)")
    parser.add_argument("--repeats", type=int, default=3, help="timings of Python per step, median taken")
    # each epoch's end (validation, checkpoints) varies by milliseconds: spread over 960 steps, a few µs a step
    parser.add_argument("--timed-steps", type=int, default=30 * UPDATE_EVERY, help="extra steps, timed")
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides for the recipes' runs")
    args = parser.parse_intermixed_args()
    args.long = args.long or args.short + UPDATE_EVERY  # the counted difference holds one update of the metrics
    register_resolvers()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    engines = [*ENGINES, *BARE]
    base = ["trainer.accelerator=cpu", f"paths.data_dir={args.data_dir}", *args.extra]
    with tempfile.TemporaryDirectory() as tmp:
        counted = {
            recipe: {
                engine: per_step(engine, [*RECIPES[recipe], *base], Path(tmp) / recipe, args.short, args.long)[0]
                for engine in engines
            }
            for recipe in args.recipes
        }
        seconds = python_seconds(engines, Path(tmp), args)
    console = Console(width=max(Console().width, 120))
    console.print(ops_table(counted))
    console.print(python_table(seconds, args.repeats))
    console.print(f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads; overrides: {base}")


if __name__ == "__main__":
    main()
