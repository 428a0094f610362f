"""Lightning's checkpoint writer, made atomic like the scratch engine's (``trainer.plugins`` in configs/trainer)."""

from pathlib import Path
from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from src.stop_and_resume.checkpoints import save_atomic


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's own writer stages the file in the system temp dir and moves it, a copy (not a rename) when that
    is another file system; this one writes beside the target and renames."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        save_atomic(checkpoint, Path(path))
