"""Rich console output: the composed config at start, the final metrics at the end."""

from collections.abc import Mapping

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

console = Console()


def print_config(cfg: DictConfig) -> None:
    console.print(Syntax(OmegaConf.to_yaml(cfg, resolve=True), "yaml", theme="ansi_dark", background_color="default"))


def print_metrics(metrics: Mapping[str, float], title: str, caption: str = "") -> None:
    table = Table(title=title, caption=caption)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in sorted(metrics.items()):
        table.add_row(name, f"{value:.6g}")
    console.print(table)
