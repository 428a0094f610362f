"""Training throughput: samples per second each epoch and, where the model's FLOPs and the device's peak are known,
the model FLOP utilization (the fraction of the device's peak the training's arithmetic used).

Timed at epoch and validation boundaries only, so no training step waits for the device. Lightning's
``ThroughputMonitor`` synchronizes the GPU after every batch to time it, and needs the FLOPs from the module; the
FLOP count and the device peaks come from Lightning's throughput utilities.
"""

import copy
import logging
import time

import torch
from lightning.fabric.utilities.throughput import get_available_flops, measure_flops
from torch import nn

log = logging.getLogger(__name__)

COMPUTE_DTYPES = {
    "16-mixed": torch.float16,
    "16-true": torch.float16,
    "bf16-mixed": torch.bfloat16,
    "bf16-true": torch.bfloat16,
    "64-true": torch.float64,
}


def device_seconds(device: torch.device) -> float:
    """Seconds once the device has finished what was queued: a boundary's time covers the work, not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def training_flops_per_sample(net: nn.Module, example: torch.Tensor) -> int | None:
    """Forward and backward FLOPs of one sample, counted on a copy of the network on the meta device (the network's
    weights, gradients and statistics stay untouched, and nothing is computed); None if the copy cannot run there."""
    try:
        # Each weight and buffer stands in as an empty meta tensor: the copy takes no memory on the device
        meta = {id(p): nn.Parameter(torch.empty_like(p, device="meta"), p.requires_grad) for p in net.parameters()}
        meta |= {id(b): torch.empty_like(b, device="meta") for b in net.buffers()}
        shadow = copy.deepcopy(net, meta).eval()  # eval: batch statistics need no second sample
        inputs = example[:1].to("meta")
        return measure_flops(shadow, lambda: shadow(inputs), lambda outputs: outputs.sum())
    except Exception as err:  # a compiled or device-bound network: throughput is logged without the utilization
        log.info("Throughput: the FLOPs of %s were not counted (%s); no FLOP utilization", type(net).__name__, err)
        return None


def peak_flops(device: torch.device, precision: str) -> int | None:
    """The device's peak FLOP/s in the precision's compute dtype, where Lightning's table has it (NVIDIA GPUs, TPUs)."""
    if device.type not in ("cuda", "xla"):
        return None
    return get_available_flops(device, COMPUTE_DTYPES.get(precision, torch.float32))


def throughput_metrics(
    samples: int, seconds: float, world_size: int, flops_per_sample: int | None, peak: int | None
) -> dict[str, float]:
    """``throughput/samples_per_sec`` over all processes and, with FLOPs and peak known, ``throughput/mfu``."""
    if seconds <= 0 or samples == 0:
        return {}
    rate = samples * world_size / seconds
    metrics = {"throughput/samples_per_sec": rate}
    if flops_per_sample and peak:
        metrics["throughput/mfu"] = rate * flops_per_sample / (peak * world_size)
    return metrics
