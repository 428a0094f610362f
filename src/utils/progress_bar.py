"""A rich progress bar over one epoch's batches, for the hand-written loop (Lightning draws its own)."""

from collections.abc import Callable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class EpochProgressBar:
    """``with EpochProgressBar("epoch 0", 100, enabled) as advance:`` then ``advance()`` after each batch; nothing is
    drawn when disabled."""

    def __init__(self, description: str, total: int, enabled: bool) -> None:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self.progress = Progress(*columns, transient=True) if enabled else None
        self.description, self.total = description, total

    def __enter__(self) -> Callable[[], None]:
        if self.progress is None:
            return lambda: None
        self.progress.start()
        task = self.progress.add_task(self.description, total=self.total)
        return lambda: self.progress.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
