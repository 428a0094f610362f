"""Every argument of ``lightning.Trainer`` and of each configured callback, set as the Lightning docs spell it.

Hydra refuses ``trainer.fast_dev_run=true`` when the YAML does not list that key, and listing all of the Trainer's
40-odd arguments (and every callback's) would bury the few that matter. So an override that names a real argument
of its node's target goes to Hydra as ``++`` (set, adding the key if need be); the schema then checks its type
like any other key. Anything else is left as typed, for Hydra to refuse with the closest key.
"""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src.utils.schema import parameters_of

TRAINER_TARGET = "lightning.pytorch.Trainer"


def callback_targets(config_dir: Path) -> dict[str, str]:
    """``callbacks.<name>`` -> its ``_target_``, for every callback of every ``callbacks`` option."""
    targets = {}
    for path in sorted((config_dir / "callbacks").glob("*.yaml")):
        for name, node in OmegaConf.load(path).items():
            if isinstance(node, DictConfig) and "_target_" in node:
                targets[f"callbacks.{name}"] = str(node._target_)
    return targets


def open_arguments(args: list[str], config_dir: Path) -> list[str]:
    targets = {"trainer": TRAINER_TARGET, **callback_targets(config_dir)}
    opened = []
    for arg in args:
        key = arg.split("=", 1)[0]
        node, _, name = key.rpartition(".")
        if "=" in arg and not arg.startswith(("+", "~", "-")) and node in targets:
            parameters, _ = parameters_of(targets[node])
            if name in parameters:
                arg = f"++{arg}"
        opened.append(arg)
    return opened
