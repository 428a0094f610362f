"""Check the config options a command line picks before Hydra reads them, so each mistake is one line.

Hydra answers a missing option with a page (the options, then its search path), a YAML syntax error in a user's
experiment file with a traceback, and an experiment file without ``# @package _global_`` not at all: its settings
land under ``experiment.*``, where nothing reads them, and the run trains on the defaults.
"""

import difflib
import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import hydra
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, Override
from omegaconf import DictConfig

from src.config.resolvers import PROJECT_ROOT, register_resolvers

# Hydra's flags that answer without running the script (help, the composed config, its own set-up).
HYDRA_INFO_FLAGS = ("-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info", "-sc", "--shell-completion")
# Groups whose options set keys anywhere in the config, so each file must say it is global.
GLOBAL_GROUPS = ("experiment", "hparams_search", "debug")
GLOBAL_HEADER = "# @package _global_"
GLOBAL_PACKAGE = re.compile(r"#\s*@package\s+_global_\s*")


def _chosen(override: Override) -> Iterator[str]:
    if isinstance(override.value(), Glob):
        return  # glob(...) picks among the options that exist: nothing to check
    values = override.sweep_string_iterator() if override.is_sweep_override() else [override.value()]
    for value in values:
        if isinstance(value, list):
            yield from (str(v) for v in value)
        elif value is not None:
            yield str(value)


def _declares_global(text: str) -> bool:
    """Whether the comment lines heading the file (where Hydra reads its directives) hold the global package."""
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.lstrip().startswith("#"):
            return False
        if GLOBAL_PACKAGE.fullmatch(line.strip()):
            return True
    return False


def _problem_of(group: str, option: str, config_dirs: list[Path]) -> str | None:
    options = sorted({p.stem for config_dir in config_dirs for p in (config_dir / group).glob("*.yaml")})
    path = next((d / group / f"{option}.yaml" for d in config_dirs if (d / group / f"{option}.yaml").is_file()), None)
    if path is None:
        close = difflib.get_close_matches(option, options, n=1, cutoff=0.5)
        hint = f"; did you mean {group}={close[0]}? " if close else " "
        return f"{group}={option} is not an option of {group}{hint}(options: {', '.join(options)})"
    text = path.read_text()
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        what = " ".join(str(part) for part in (getattr(err, "context", None), getattr(err, "problem", None)) if part)
        return f"{path}{where}: not valid YAML: {what or err}"
    if group in GLOBAL_GROUPS and not _declares_global(text):
        return (
            f"{path} does not start with '{GLOBAL_HEADER}': without it its settings land under {group}.* and "
            "are ignored; add that line at the top"
        )
    return None


def _null_problem(group: str, config_dirs: list[Path]) -> str:
    options = sorted({p.stem for config_dir in config_dirs for p in (config_dir / group).glob("*.yaml")})
    off = f"{group}=none turns it off" if "none" in options else f"pick one of {', '.join(options)}"
    return f"{group}=null is not an option of {group}; {off}"


def user_config_dirs(args: list[str]) -> list[Path]:
    """The directories ``--config-dir DIR`` (``-cd DIR``, ``--config-dir=DIR``) adds to Hydra's search path."""
    dirs = []
    for flag, value in itertools.pairwise([*args, ""]):
        if flag in ("--config-dir", "-cd") and value:
            dirs.append(Path(value))
        elif flag.startswith(("--config-dir=", "-cd=")):
            dirs.append(Path(flag.split("=", 1)[1]))
    return dirs


def command_line_problems(args: list[str], config_dir: Path) -> list[str]:
    """One line per config option the command line picks that is missing, unreadable or not global as it must;
    options are looked up in ``config_dir`` and in the directories ``--config-dir`` adds."""
    config_dirs = [config_dir, *user_config_dirs(args)]
    if any(a.startswith(("--config-path", "-cp", "hydra.searchpath", "+hydra.searchpath")) for a in args):
        return []  # options may come from where only Hydra looks: its own message then names a missing one
    try:
        overrides = OverridesParser.create().parse_overrides([a for a in args if "=" in a and not a.startswith("-")])
    except Exception:  # a syntax error: Hydra's own message names it
        return []
    problems = []
    for override in overrides:
        group = override.key_or_group
        if override.is_delete() or group.startswith("hydra") or not any((d / group).is_dir() for d in config_dirs):
            continue  # hydra/...: Hydra's own groups, whose options plugins add (hydra/launcher=joblib)
        if override.value() is None:  # Hydra answers group=null with a traceback
            problems.append(_null_problem(group, config_dirs))
            continue
        problems += [p for option in _chosen(override) if (p := _problem_of(group, option, config_dirs)) is not None]
    return problems


def usage(script: str) -> str:
    return f"usage: python {script} ckpt_path=logs/train/runs/<run>/checkpoints/<epoch_NNN|last>.ckpt"


def missing_checkpoint_argument(args: list[str], script: str) -> str | None:
    """The usage line when a command line that would run eval.py or export.py names no ``ckpt_path``: said before
    Hydra starts, so no run directory is left behind for a command that did nothing."""
    named = any(arg.lstrip("+").startswith("ckpt_path=") for arg in args)
    return None if named or answered_by_hydra(args) else usage(script)


def answered_by_hydra(args: list[str]) -> bool:
    """Whether Hydra answers this command line itself (help, the composed config, its set-up) without a run."""
    return any(arg.split("=", 1)[0] in HYDRA_INFO_FLAGS for arg in args)


def answer_with_hydra(task: Callable[[DictConfig], None], config_name: str) -> NoReturn:
    """Hydra's answer to ``--help``, ``--cfg`` or ``--info``, given before a script imports torch and Lightning:
    in half a second instead of four (2 CPU cores, 2026-12-04). ``task`` (never called) is the script's own, so
    Hydra names the script."""
    register_resolvers()
    hydra.main(version_base="1.3", config_path=str(PROJECT_ROOT / "configs"), config_name=config_name)(task)()
    raise SystemExit(0)
