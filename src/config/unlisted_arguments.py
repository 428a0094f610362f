"""Every argument of ``lightning.Trainer`` and of each configured callback, set as the Lightning docs spell it.

Hydra refuses ``trainer.fast_dev_run=true`` when the YAML does not list that key, and listing all of the Trainer's
40-odd arguments (and every callback's) would bury the few that matter. So an override that names a real argument
of its node's target goes to Hydra as ``++`` (set, adding the key if need be); the schema then checks its type
like any other key. Anything else is left as typed, for Hydra to refuse with the closest key.
"""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src.config.signatures import parameters_of

TRAINER_TARGET = "lightning.pytorch.Trainer"


def _nodes(config_dir: Path) -> dict[str, tuple[str, set[str]]]:
    """``trainer`` and ``callbacks.<name>`` -> their ``_target_`` and the keys their ``default.yaml`` lists, which
    every other option of the group extends (a key only another option lists may be absent: it gets ``++``)."""
    trainer = OmegaConf.load(config_dir / "trainer" / "default.yaml")
    nodes = {"trainer": (TRAINER_TARGET, set(trainer.keys()))}
    callbacks = OmegaConf.load(config_dir / "callbacks" / "default.yaml")
    for name, node in callbacks.items():
        if isinstance(node, DictConfig) and "_target_" in node:
            nodes[f"callbacks.{name}"] = (str(node._target_), set(node.keys()))
    return nodes


def allow_unlisted_arguments(args: list[str], config_dir: Path) -> list[str]:
    nodes = _nodes(config_dir)
    opened = []
    for arg in args:
        key = arg.split("=", 1)[0]
        node, _, name = key.rpartition(".")
        if "=" in arg and not arg.startswith(("+", "~", "-")) and node in nodes:
            target, listed = nodes[node]
            if name not in listed and name in parameters_of(target)[0]:
                arg = f"++{arg}"  # an argument no YAML lists: Hydra would refuse it without ++
        opened.append(arg)
    return opened
