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


def _nodes(config_dir: Path) -> dict[str, tuple[str, set[str]]]:
    """``trainer`` and ``callbacks.<name>`` -> their ``_target_`` and the keys some YAML file of theirs lists."""
    listed: dict[str, set[str]] = {"trainer": set()}
    targets = {"trainer": TRAINER_TARGET}
    for path in sorted((config_dir / "trainer").glob("*.yaml")):
        listed["trainer"] |= set(OmegaConf.load(path).keys()) - {"defaults"}
    for path in sorted((config_dir / "callbacks").glob("*.yaml")):
        for name, node in OmegaConf.load(path).items():
            if isinstance(node, DictConfig):
                key = f"callbacks.{name}"
                listed.setdefault(key, set()).update(node.keys())
                if "_target_" in node:
                    targets[key] = str(node._target_)
    return {key: (targets[key], listed[key]) for key in targets}


def open_arguments(args: list[str], config_dir: Path) -> list[str]:
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
