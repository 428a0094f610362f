"""Checkpointing whose bookkeeping follows a run resumed into a new run directory (what ``resume=auto`` does)."""

from functools import cached_property
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from src.stop_and_resume.checkpoints import copy_into_run


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that, resumed from another directory, copies the checkpoints it tracks into its own and
    keeps its best score and top-k: the best checkpoint and ``optimized_metric`` then come out as in a run never
    interrupted. Lightning's own keeps only ``best_model_path`` there, so the first resumed epoch always counts as
    the best, and a run resumed after its last epoch has no best score at all."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._every_n_train_steps < 1 and self._train_time_interval is None:
            self.on_train_batch_end = None  # it would save nothing there; Lightning skips a hook that is not callable

    @cached_property
    def state_key(self) -> str:
        # Lightning reads it around every hook call, every step; ModelCheckpoint formats it from its settings anew
        return super().state_key

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old_dir = state_dict.get("dirpath")
        if self.dirpath is not None and old_dir is not None and Path(old_dir) != Path(self.dirpath):
            state_dict = self._moved_here(state_dict, Path(old_dir))
        super().load_state_dict(state_dict)

    def _moved_here(self, state: dict[str, Any], old_dir: Path) -> dict[str, Any]:
        def move(path: str) -> str:
            moved = copy_into_run(path, old_dir, Path(self.dirpath), copy=rank_zero_only.rank == 0)
            return str(moved) if moved is not None else path

        return {
            **state,
            "dirpath": self.dirpath,
            "best_model_path": move(state.get("best_model_path", "")),
            "kth_best_model_path": move(state.get("kth_best_model_path", "")),
            "last_model_path": move(state.get("last_model_path", "")),
            "best_k_models": {move(path): score for path, score in state.get("best_k_models", {}).items()},
        }
