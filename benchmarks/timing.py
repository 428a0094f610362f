"""What the benchmarks share: the same work for both engines, wall-clock times, the machine's name."""

import os
import platform
from pathlib import Path

import torch
from omegaconf import DictConfig

from src.checks.scratch_limits import callback_reads
from src.config.compose import compose_run
from src.training.throughput import device_seconds

# Both engines doing the same work each epoch: no progress bar or model summary, one logger, every epoch run; no
# testing, so the metric returned is the monitored one (a recipe may optimize a test/ metric).
SAME_WORK = [
    "test=false",
    "optimized_metric=${monitor}",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "logger=csv",
    "callbacks.early_stopping=null",
]


def lightning_only_callbacks(cfg: DictConfig) -> list[str]:
    """The callbacks of ``cfg`` the hand-written loop does not run (a recipe's Lookahead or freeze)."""
    reads = callback_reads(cfg)
    return [name for name, node in (cfg.get("callbacks") or {}).items() if node and name not in reads]


def compose_same_work(overrides: list[str], output_dir: Path) -> DictConfig:
    """The run ``overrides`` compose to with :data:`SAME_WORK`, and with the Lightning-only callbacks off, so that
    either engine can run it and both train alike."""
    cfg = compose_run([*SAME_WORK, *overrides], output_dir)
    for name in lightning_only_callbacks(cfg):
        cfg.callbacks[name] = None
    return cfg


def now() -> float:
    """Wall-clock seconds once the GPU has finished what was queued, so a time covers the work, not its launch."""
    return device_seconds(torch.device("cuda" if torch.cuda.is_available() else "cpu"))


def cpu_name() -> str:
    """The CPU's model name as Linux reports it (``platform.processor()`` is often empty there)."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    return f"CPU: {name or platform.processor() or platform.machine()}, {os.cpu_count()} cores"
