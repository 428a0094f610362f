"""Compose and time runs of ``train.py``'s config in-process, as the benchmarks do."""

import os
import platform
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from src.config.resolvers import PROJECT_ROOT

# Both engines doing the same work each epoch: no progress bar or model summary, one logger, every epoch run.
SAME_WORK = [
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "logger=csv",
    "callbacks.early_stopping=null",
]


def compose_run(overrides: list[str], output_dir: Path) -> DictConfig:
    """The config ``python train.py <overrides>`` would run, writing into ``output_dir``; Hydra's runtime config is
    set as under ``@hydra.main``, so errors name the chosen options."""
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=["print_config=false", *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
        cfg.paths.output_dir = str(output_dir)
    return cfg


def now() -> float:
    """Wall-clock seconds once the GPU has finished what was queued, so a time covers the work, not its launch."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


def cpu_name() -> str:
    """The CPU's model name as Linux reports it (``platform.processor()`` is often empty there)."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    return f"CPU: {name or platform.processor() or platform.machine()}, {os.cpu_count()} cores"
