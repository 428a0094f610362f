"""A search space written in Hydra's sweep syntax, as Optuna distributions, and a trial's values as overrides.

optimizer: choice(sgd, adam)              -> CategoricalDistribution(["sgd", "adam"])
optimizer.lr: tag(log, interval(1e-4, 0.1)) -> FloatDistribution(1e-4, 0.1, log=True)
model.depth: range(1, 5)                  -> IntDistribution(1, 4)
trainer.max_epochs: 3                     -> fixed: passed to every trial unchanged
"""

import re
from collections.abc import Mapping
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep, Transformer
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

PLAIN = re.compile(r"[\w./:-]+")


class SearchSpaceError(ValueError):
    """A search-space entry Optuna cannot sample; the message names the key and what would work."""


def _distribution(override: Override) -> BaseDistribution:
    key, value = override.get_key_element(), override.value()
    if isinstance(value, ChoiceSweep):
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator(transformer=Transformer.encode))
        if not values:
            raise SearchSpaceError(f"hydra.sweeper.params.{key}: {override.input_line} is an empty range")
        if len(values) > 1 and all(isinstance(v, int) for v in values) and not value.shuffle:
            return IntDistribution(min(values), max(values), step=abs(int(value.step or 1)))
        return CategoricalDistribution(values)  # float steps: the range's own values, free of rounding drift
    if isinstance(value, IntervalSweep):
        low, high, log = value.start, value.end, "log" in value.tags
        if low is None or high is None or not low < high or (log and low <= 0):
            raise SearchSpaceError(
                f"hydra.sweeper.params.{key}: {override.input_line} needs start < end (and start > 0 with "
                "tag(log, ...)), e.g. tag(log, interval(0.0001, 0.1))"
            )
        if isinstance(low, int) and isinstance(high, int):
            return IntDistribution(low, high, log=log)
        return FloatDistribution(float(low), float(high), log=log)
    raise SearchSpaceError(
        f"hydra.sweeper.params.{key}: {override.input_line} is not a sweep Optuna can sample; use choice(...), "
        "range(...) or interval(...)"
    )


def parse_search_space(
    params: Mapping[str, Any], arguments: list[str]
) -> tuple[dict[str, BaseDistribution], list[str]]:
    """The distributions to sample and the fixed overrides, from ``hydra.sweeper.params`` and the command line's
    own sweep arguments (which take precedence)."""
    lines = [f"{key}={value}" for key, value in params.items()] + list(arguments)
    distributions: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(lines):
        key = override.get_key_element()
        distributions.pop(key, None)
        fixed.pop(key, None)
        if override.is_sweep_override():
            distributions[key] = _distribution(override)
        else:
            fixed[key] = override.input_line
    return distributions, list(fixed.values())


def override_value(value: Any) -> str:
    """A sampled value as Hydra's override grammar reads it back."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and not PLAIN.fullmatch(value):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)


def trial_overrides(params: Mapping[str, Any]) -> list[str]:
    return [f"{key}={override_value(value)}" for key, value in params.items()]
