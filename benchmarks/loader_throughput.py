"""Images per second of the device-resident loader vs the torchvision DataLoader, CIFAR-10 train set, same
augmentation (random crop 4 px reflect + horizontal flip, normalization): the configured data=cifar10 pipeline.

    python -m benchmarks.loader_throughput --data-dir ../data            # CPU
    python -m benchmarks.loader_throughput --data-dir /root/data --device cuda
"""

import argparse
import platform
import statistics
import time
from collections.abc import Iterable

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from rich.console import Console
from rich.table import Table

from src.config.resolvers import PROJECT_ROOT, register_resolvers
from src.datamodules.augment import BatchTransform
from src.datamodules.device_loader import DeviceLoader


def images_per_second(loader: Iterable, device: torch.device, batches: int) -> float:
    """Time ``batches`` batches delivered on ``device`` (the copy a DataLoader needs is part of its cost)."""
    iterator = iter(loader)
    next(iterator)  # warm-up: worker start-up, first allocations
    count, start = 0, time.perf_counter()
    for _ in range(batches):
        x, y = next(iterator)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        count += len(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="train.py overrides of the data, e.g. paths.cache_dir=...")
    parser.add_argument("--data-dir", required=True, help="folder holding cifar-10-batches-py/")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=100, help="timed batches per repetition")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts to try")
    args = parser.parse_intermixed_args()  # overrides may come before or after the flags

    register_resolvers()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "configs"), version_base="1.3"):
        overrides = ["data=cifar10", f"paths.data_dir={args.data_dir}", "paths.output_dir=.", *args.overrides]
        cfg = compose("train", overrides=overrides)
    device = torch.device(args.device)
    results: list[tuple[str, float]] = []

    data = instantiate(cfg.data, batch_size=args.batch_size)
    data.setup()
    images, labels = data.splits[0].tensors
    transform = BatchTransform(data.mean, data.std, data.augmentation)
    device_loader = DeviceLoader(images.to(device), labels.to(device), args.batch_size, transform, shuffle=True)
    per_epoch = len(device_loader)
    runs = [images_per_second(_cycle(device_loader), device, args.batches) for _ in range(args.repeats)]
    results.append(("device (uint8 on device, batched augmentation)", statistics.median(runs)))

    for workers in args.workers:
        classic = instantiate(cfg.data, batch_size=args.batch_size, loader="torchvision", num_workers=workers)
        classic.setup()
        loader = classic.train_dataloader()
        loader.pin_memory = device.type == "cuda"
        runs = [images_per_second(_cycle(loader), device, args.batches) for _ in range(args.repeats)]
        results.append((f"torchvision DataLoader, {workers} workers", statistics.median(runs)))

    baseline = max(rate for name, rate in results[1:])
    table = Table(
        title=f"CIFAR-10 train loader throughput on {device} (batch {args.batch_size}, {per_epoch} per epoch)"
    )
    for column in ("loader", "images/s", "vs best DataLoader"):
        table.add_column(column, justify="left" if column == "loader" else "right")
    for name, rate in results:
        table.add_row(name, f"{rate:,.0f}", f"{rate / baseline:.1f}x")
    console = Console()
    console.print(table)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU"
    console.print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {gpu}, "
        f"torch {torch.__version__}; median of {args.repeats} x {args.batches} batches"
    )


def _cycle(loader: Iterable) -> Iterable:
    """Endless batches across epoch boundaries, as a training loop sees them."""
    while True:
        yield from loader


if __name__ == "__main__":
    main()
