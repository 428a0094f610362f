"""Lightning callbacks of this template (the stock ones come straight from ``lightning.pytorch.callbacks``)."""

from src.callbacks.epoch_throughput import EpochThroughput
from src.callbacks.freeze_after import FreezeAfter
from src.callbacks.lookahead import Lookahead
from src.callbacks.paced_progress_bar import PacedRichProgressBar
from src.callbacks.place_data import PlaceData
from src.callbacks.run_checkpoint import RunCheckpoint
from src.callbacks.save_on_interrupt import SaveOnInterrupt
from src.callbacks.stop_on_non_finite import StopOnNonFinite

__all__ = [
    "EpochThroughput",
    "FreezeAfter",
    "Lookahead",
    "PacedRichProgressBar",
    "PlaceData",
    "RunCheckpoint",
    "SaveOnInterrupt",
    "StopOnNonFinite",
]
