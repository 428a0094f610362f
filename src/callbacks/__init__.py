"""Lightning callbacks of this template (the stock ones come straight from ``lightning.pytorch.callbacks``)."""

from src.callbacks.stop_on_non_finite import StopOnNonFiniteLoss

__all__ = ["StopOnNonFiniteLoss"]
