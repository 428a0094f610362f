"""The config ``python train.py <overrides>`` would run, composed in-process for tests, benchmarks and notebooks."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from src.config.resolvers import PROJECT_ROOT
from src.config.unlisted_arguments import allow_unlisted_arguments


def compose_run(overrides: list[str], output_dir: Path) -> DictConfig:
    """The config ``python train.py <overrides>`` would run, writing into ``output_dir``: a Trainer or callback
    argument no YAML lists is accepted as train.py accepts it, and Hydra's runtime config is set as under
    ``@hydra.main``, so errors name the chosen options."""
    config_dir = PROJECT_ROOT / "configs"
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        typed = ["print_config=false", *overrides]
        cfg = compose("train", overrides=allow_unlisted_arguments(typed, config_dir), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
        cfg.paths.output_dir = str(output_dir)
    return cfg
