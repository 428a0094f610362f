"""OmegaConf resolvers the configs use: ``${project_root:}`` and ``${run_id:}``."""

import uuid
from pathlib import Path

from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def register_resolvers() -> None:
    """Idempotent, so train.py, tests and notebooks can all call it."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("run_id"):
        # A random suffix makes run directories collision-proof even for runs started in the same second; cached,
        # so every job of a multirun resolves the same sweep directory.
        OmegaConf.register_new_resolver("run_id", lambda: uuid.uuid4().hex[:6], use_cache=True)
