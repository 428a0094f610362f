"""The profiler Lightning gets when none is asked for: Lightning's own records nothing, but is not free.

Lightning runs every hook, of every callback and of the module, inside ``trainer.profiler.profile(name)``. Its
default, ``PassThroughProfiler``, builds a generator-based context manager for each of those calls, about fifty
a training step with the default callbacks; this one hands out one shared, empty context.
"""

from contextlib import AbstractContextManager, nullcontext

from lightning.pytorch.profilers import PassThroughProfiler


class QuietProfiler(PassThroughProfiler):
    """``PassThroughProfiler`` without its per-call cost; ``trainer.profiler=simple`` (or any) replaces it."""

    _nothing = nullcontext()

    def profile(self, action_name: str) -> AbstractContextManager:  # type: ignore[override]
        return self._nothing
