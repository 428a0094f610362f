"""Check every object config against the signature of what it builds, before anything is built.

The schema is the code itself: a node with ``_target_`` may only hold that callable's parameters, with values of
their annotated types; ``BOUNDS`` adds the ranges that signatures cannot say. A typo gets the closest real key.
Written here because Hydra checks structure only against the YAML, and its structured-config schemas would
repeat every signature by hand.
"""

import collections.abc
import difflib
import inspect
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from src.config.builders import RUNTIME_OPTIONS
from src.config.resolvers import PROJECT_ROOT
from src.config.signatures import parameters_of
from src.errors import ConfigError

HYDRA_KEYS = {"_target_", "_partial_", "_convert_", "_recursive_", "_args_"}
# Keys a builder consumes itself, not arguments of the target.
CONSUMED_KEYS = {"model": set(RUNTIME_OPTIONS)}


@dataclass(frozen=True)
class Bound:
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    example: str = ""

    def holds(self, value: float) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return " and ".join(parts) + (f", e.g. {self.example}" if self.example else "")


BOUNDS = {
    "seed": Bound(0),
    "optimizer.lr": Bound(0, low_open=True, example="1e-3"),
    "optimizer.weight_decay": Bound(0),
    "optimizer.momentum": Bound(0, 1),
    "model.dropout": Bound(0, 1, high_open=True),
    "module.label_smoothing": Bound(0, 1, high_open=True),
    "module.test_time_shift": Bound(0, example="1"),
    "data.batch_size": Bound(1, example="64"),
    "data.eval_batch_size": Bound(1),
    "data.num_workers": Bound(0),
    "trainer.max_epochs": Bound(1),
    "trainer.accumulate_grad_batches": Bound(1),
    "trainer.gradient_clip_val": Bound(0, low_open=True),
    "callbacks.early_stopping.patience": Bound(0),
}


def _target_nodes(node: Any, path: str = "") -> Iterator[tuple[str, DictConfig]]:
    if not isinstance(node, DictConfig):
        return
    if "_target_" in node:
        yield path, node
    for key in node:
        yield from _target_nodes(node._get_node(key), f"{path}.{key}" if path else str(key))


def _accepts(annotation: Any, value: Any) -> bool:
    """Whether ``value`` (plain, resolved) fits ``annotation``; what cannot be told is accepted."""
    origin = typing.get_origin(annotation)
    if annotation is Any or annotation is inspect.Parameter.empty:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in typing.get_args(annotation))
    if origin is Literal:
        return value in typing.get_args(annotation)
    if value is None:
        return annotation is type(None)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    container = origin or annotation
    if container in (list, tuple, typing.Sequence, collections.abc.Sequence):
        if not isinstance(value, list | tuple):
            return False
        args = typing.get_args(annotation)
        item = args[0] if len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis) else Any
        return all(_accepts(item, element) for element in value)
    if container in (dict, typing.Mapping, collections.abc.Mapping):
        return isinstance(value, dict)
    return True  # tensors, modules, callables, classes: not expressible in YAML anyway


def _describe(annotation: Any) -> str:
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if typing.get_args(annotation):  # Sequence[float]: the items' type too
        return str(annotation).replace("collections.abc.", "").replace("typing.", "")
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def takes(allowed: set[str]) -> str:
    return f"it takes: {', '.join(sorted(allowed))}" if allowed else "it takes no arguments"


def check_keys_and_types(cfg: DictConfig) -> None:
    for path, node in _target_nodes(cfg):
        target = str(node._target_)
        try:
            parameters, accepts_any = parameters_of(target)
        except (ImportError, AttributeError, ValueError) as err:
            raise ConfigError(f"{path}._target_={target} cannot be imported: {err}") from None
        allowed = set(parameters) | CONSUMED_KEYS.get(path, set())
        values = OmegaConf.to_container(node, resolve=True)
        for key, value in values.items():
            if key in HYDRA_KEYS:
                continue
            if key not in allowed:
                if accepts_any:
                    continue
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {path}.{close[0]}? " if close else ""
                raise ConfigError(
                    f"{path}.{key} is not a parameter of {target}; {hint}({takes(allowed)})"
                    + _set_by_experiment(f"{path}.{key}")
                )
            annotation = parameters.get(key, Any)
            if not _accepts(annotation, value):
                expected = _describe(annotation)
                raise ConfigError(f"{path}.{key}={value!r} has the wrong type; {target} expects {expected}")


def _set_by_experiment(key: str) -> str:
    """Where the chosen experiment sets ``key``, say so: the user did not type it."""
    choice = HydraConfig.get().runtime.choices.get("experiment") if HydraConfig.initialized() else None
    path = PROJECT_ROOT / "configs" / "experiment" / f"{choice}.yaml"
    if not choice or not path.is_file() or OmegaConf.select(OmegaConf.load(path), key) is None:
        return ""
    return f"; experiment={choice} sets it (in {path}): drop it with ~{key}"


def check_bounds(cfg: DictConfig) -> None:
    for key, bound in BOUNDS.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}={value!r} is not a number; it must be {bound}")
        if not bound.holds(value):
            raise ConfigError(f"{key}={value} is out of range; it must be {bound}")


def check_schema(cfg: DictConfig) -> None:
    """Ranges first (their messages are the most specific), then keys and types of every object config."""
    check_bounds(cfg)
    check_keys_and_types(cfg)
