"""What a fit returns to train.py, whichever engine ran it."""

import math
from dataclasses import dataclass

from src.errors import ConfigError


@dataclass
class FitResult:
    metrics: dict[str, float]
    epochs: int
    global_step: int
    best_checkpoint: str | None
    best_score: float | None  # the best value of the monitored metric
    world_size: int = 1  # processes that fit together; each held a shard of the test split


def optimized_value(name: str, monitor: str, result: FitResult) -> float:
    """The best value when the metric is the monitored one (what the checkpoint kept), else its logged value."""
    if name == monitor and result.best_score is not None and math.isfinite(result.best_score):
        return result.best_score
    if name not in result.metrics:
        raise ConfigError(f"optimized_metric={name!r} was never logged; logged metrics: {sorted(result.metrics)}")
    return result.metrics[name]
