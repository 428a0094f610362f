"""Training images/s of a CIFAR-10 recipe (by default the ResNet-18 of experiment=cifar10_resnet) at each trainer
precision.

The batches are synthetic uint8 images already on the device, served by the project's device loader, so the model,
the optimizer step and Lightning's loop are what is timed. The clock starts after ``--warmup`` steps (CUDA start-up,
cuDNN autotuning, ``model.compile=true``) and stops ``--steps`` steps later, after a device sync.

    python -m benchmarks.precision_throughput                                  # GPU: 32-true, 16-mixed, bf16-mixed
    python -m benchmarks.precision_throughput model.channels_last=true trainer.benchmark=true
    python -m benchmarks.precision_throughput --quick                          # a smoke test on any machine
    python -m benchmarks.precision_throughput --experiment none model=cnn data=cifar10 --batch-size 128  # a CNN
    python -m benchmarks.precision_throughput --experiment cifar10_speedrun --batch-size 1024 model.channels_last=true
"""

import argparse
import logging
import tempfile
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from rich.console import Console
from rich.table import Table

from benchmarks.timing import cpu_name, now
from src.config import builders
from src.config.compose import compose_run
from src.config.resolvers import register_resolvers
from src.datamodules.augment import BatchTransform
from src.datamodules.device_loader import DeviceLoader

BATCHES_PER_EPOCH = 64  # of synthetic images; epochs repeat them in a new order
QUICK = ["model.base_width=8"]  # --quick: ResNet-18 at 1/8 of its width, as CPUs run bfloat16 convolutions slowly


class Stopwatch(L.Callback):
    """Seconds from the start of training batch ``warmup`` to the end of training."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = self.seconds = 0.0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: object, batch_idx: int
    ) -> None:
        if trainer.global_step == self.warmup:
            self.start = now()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds = now() - self.start


def images_per_second(overrides: list[str], precision: str, batch_size: int, warmup: int, steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_run(overrides, Path(tmp))
        L.seed_everything(0)
        module = instantiate(cfg.module, net=builders.build_model(cfg), optimizer=instantiate(cfg.optimizer))
        stopwatch = Stopwatch(warmup)
        trainer: L.Trainer = instantiate(
            cfg.trainer,
            accelerator="auto",
            precision=precision,
            max_steps=warmup + steps,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            logger=False,
            callbacks=[stopwatch],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        device = trainer.strategy.root_device
        count = batch_size * BATCHES_PER_EPOCH
        images = torch.randint(0, 256, (count, *cfg.data.input_shape), dtype=torch.uint8, device=device)
        labels = torch.randint(0, cfg.data.num_outputs, (count,), device=device)
        transform = BatchTransform(cfg.data.mean, cfg.data.std, augmentation=None)
        trainer.fit(module, train_dataloaders=DeviceLoader(images, labels, batch_size, transform, shuffle=True))
    return steps * batch_size / stopwatch.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="train.py overrides on top of --experiment")
    parser.add_argument("--experiment", default="cifar10_resnet", help="the recipe; none: train.py's defaults")
    parser.add_argument("--precisions", nargs="+", help="default: 32-true, 16-mixed (CUDA) and bf16-mixed")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--warmup", type=int, default=30, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=300, help="timed steps")
    parser.add_argument(
        "--quick", action="store_true", help="batch 8, 2 + 3 steps, 1/8 of the width: a smoke test, not a measurement"
    )
    args = parser.parse_intermixed_args()  # overrides may come before or after the flags
    if args.quick:
        args.batch_size, args.warmup, args.steps = 8, 2, 3
        args.overrides = [*args.overrides, *QUICK]
    cuda = torch.cuda.is_available()
    precisions = args.precisions or [
        "32-true",
        *(["16-mixed"] if cuda else []),
        *(["bf16-mixed"] if not cuda or torch.cuda.is_bf16_supported() else []),
    ]
    register_resolvers()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")

    overrides = [*([f"experiment={args.experiment}"] if args.experiment != "none" else []), *args.overrides]
    rates = {p: images_per_second(overrides, p, args.batch_size, args.warmup, args.steps) for p in precisions}
    device = torch.cuda.get_device_name() if cuda else cpu_name()
    table = Table(
        title=f"{' '.join(overrides)}: training images/s, batch {args.batch_size}, {args.steps} steps after "
        f"{args.warmup}",
        caption=f"{device}, torch {torch.__version__}",
    )
    for column in ("precision", "images/s", f"speed-up over {precisions[0]}"):
        table.add_column(column, justify="left" if column == "precision" else "right")
    for precision, rate in rates.items():
        table.add_row(precision, f"{rate:,.0f}", f"{rate / rates[precisions[0]]:.2f}x")
    Console().print(table)


if __name__ == "__main__":
    main()
