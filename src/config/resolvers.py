"""OmegaConf resolvers the configs use: ``${project_root:}``, ``${run_name:}`` and ``${direction_of:<metric>}``."""

import os
import uuid
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RUN_NAME_VARIABLE = "TEMPLATE_RUN_NAME"


def new_run_name() -> str:
    """``<date>_<time>_<random>``: sorts by time, and never collides even for runs started in the same second."""
    return f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{uuid.uuid4().hex[:6]}"


# The metrics the template logs that improve as they fall; every other one of its metrics improves as it rises.
LOWER_IS_BETTER = ("loss", "mse", "mae")


def direction_of(metric: str) -> str:
    """``min`` or ``max``: how a metric the template logs improves (``val/acc``: max). A metric of the user's own is
    judged at start-up against its ``higher_is_better``, and a contradiction is refused there."""
    return "min" if metric.rsplit("/", 1)[-1] in LOWER_IS_BETTER else "max"


def register_resolvers() -> None:
    """Idempotent, so train.py, tests and notebooks can all call it."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("direction_of"):
        OmegaConf.register_new_resolver("direction_of", direction_of)
    if not OmegaConf.has_resolver("run_name"):
        # Cached: every job of a multirun resolves the same sweep directory. Processes started by torchrun get the
        # name rank 0 drew (see src/engines/distributed.py), so they share one run directory.
        OmegaConf.register_new_resolver(
            "run_name", lambda: os.environ.get(RUN_NAME_VARIABLE) or new_run_name(), use_cache=True
        )
