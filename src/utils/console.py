"""Console output: the composed config at start, the final metrics at the end, and no third-party noise."""

import logging
import warnings
from collections.abc import Mapping

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

console = Console()


def print_config(cfg: DictConfig) -> None:
    console.print(Syntax(OmegaConf.to_yaml(cfg, resolve=True), "yaml", theme="ansi_dark", background_color="default"))


def print_metrics(metrics: Mapping[str, float], title: str, output_dir: str = "") -> None:
    """The metrics as a table, then where they were written, whole on one line so it can be copied."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in sorted(metrics.items()):
        table.add_row(name, f"{value:.6g}")
    console.print(table)
    if output_dir:
        console.print(f"Written to {output_dir}", soft_wrap=True, highlight=False)


# What Lightning prints on every run that helps nobody running this template: an advertisement, a note that our
# own model summary replaced its default, and a deprecation inside Lightning itself.
NOISE = ("💡 Tip:", "Trainer already configured with model summary callbacks")


def _not_noise(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(NOISE)


def quiet_third_party() -> None:
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_not_noise)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # Under DDP, for each epoch metric: the module logs torchmetrics' compute(), already reduced over the processes.
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self\.log\(.*sync_dist=True\)")
