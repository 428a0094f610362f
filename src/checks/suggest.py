"""After Hydra refuses an override of a key that does not exist, name the key that was probably meant.

Hydra's message says the key is missing and how to add it, which is the wrong advice for a typo.
"""

import difflib
import sys
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from src.config.signatures import parameters_of


def config_keys(node: Any, prefix: str = "") -> Iterator[str]:
    """Every key of the config, and every argument its ``_target_`` nodes could take (set or not)."""
    if isinstance(node, DictConfig):
        if "_target_" in node:
            with suppress(ImportError, AttributeError, ValueError):  # the schema check names an unimportable target
                yield from (f"{prefix}.{name}" for name in parameters_of(str(node._target_))[0])
        for key in node:
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from config_keys(node._get_node(key), path)


def override_suggestions(args: list[str], config_dir: str, config_name: str) -> list[str]:
    """One line per override whose key the composed config lacks, naming the closest key it has."""
    try:
        overrides = OverridesParser.create().parse_overrides([a for a in args if "=" in a and not a.startswith("-")])
    except Exception:  # a syntax error: Hydra's own message is the right one
        return []
    choices = [o.input_line for o in overrides if "." not in o.key_or_group and not (o.is_add() or o.is_delete())]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            cfg = compose(config_name, overrides=choices)
    except Exception:  # a wrong group option: Hydra's message already lists the options
        return []
    keys = sorted(set(config_keys(cfg)))
    lines = []
    for override in overrides:
        key = override.key_or_group
        if "." not in key or override.is_add() or override.is_force_add() or override.is_delete() or key in keys:
            continue
        value = override.input_line.split("=", 1)[1]
        ancestors = {key.rsplit(".", depth)[0] for depth in range(1, key.count(".") + 1)}
        close = [k for k in difflib.get_close_matches(key, keys, n=3, cutoff=0.75) if k not in ancestors]
        parent = OmegaConf.select(cfg, key.rsplit(".", 1)[0])
        if close:
            lines.append(f"{key} is not a key of this config; did you mean {close[0]}={value}?")
        elif isinstance(parent, DictConfig) and "_target_" not in parent:  # an open mapping such as module.metrics
            lines.append(f"{key} is a new entry of {key.rsplit('.', 1)[0]}; add it with +{key}={value}")
    return lines


def print_override_suggestions(config_dir: str, config_name: str) -> None:
    for line in override_suggestions(sys.argv[1:], config_dir, config_name):
        print(line, file=sys.stderr)
