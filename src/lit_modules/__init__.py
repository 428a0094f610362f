"""``LightningModule``s: the task picks loss and metrics; optimizer and scheduler come in as Hydra partials."""

from src.lit_modules.supervised import SupervisedModule

__all__ = ["SupervisedModule"]
