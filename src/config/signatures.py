"""The parameters a ``_target_`` takes, read from its signature (a class's ``__init__`` and, while it passes
``**kwargs`` up, its bases'): what the schema checks a config node against and the command line may add."""

import inspect
import typing
from collections.abc import Callable
from typing import Any

from hydra.utils import get_object


def _forwards_keywords(function: Callable[..., Any]) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(function).parameters.values())


def _signatures(target: str) -> tuple[list[Callable[..., Any]], bool]:
    """The functions whose parameters a target takes: the callable itself, or a class's ``__init__`` and, while
    each passes ``**kwargs`` up, its bases'; and whether the last one still takes any keyword."""
    obj: Callable[..., Any] = get_object(target)
    if not inspect.isclass(obj):
        return [obj], _forwards_keywords(obj)
    inits = [vars(cls)["__init__"] for cls in obj.__mro__ if "__init__" in vars(cls) and cls is not object]
    for count, init in enumerate(inits, start=1):
        if not _forwards_keywords(init):
            return inits[:count], False
    return inits, True


def _named_parameters(function: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    return {
        name: p
        for name, p in inspect.signature(function).parameters.items()
        if name != "self" and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }


def parameters_of(target: str) -> tuple[dict[str, Any], bool]:
    """The callable's parameters with their annotations, and whether it takes any keyword at all. A class whose
    ``__init__`` passes ``**kwargs`` up takes its bases' parameters too."""
    functions, accepts_any = _signatures(target)
    parameters: dict[str, Any] = {}
    for function in functions:
        try:
            hints = typing.get_type_hints(function)
        except Exception:  # annotations that name things not importable at run time: check names only
            hints = {}
        parameters = {name: hints.get(name, Any) for name in _named_parameters(function)} | parameters
    return parameters, accepts_any


def parameter_defaults(target: str) -> dict[str, Any]:
    """The default of each parameter :func:`parameters_of` lists (``inspect.Parameter.empty`` when it has none)."""
    defaults: dict[str, Any] = {}
    for function in _signatures(target)[0]:
        for name, parameter in _named_parameters(function).items():
            defaults.setdefault(name, parameter.default)
    return defaults
