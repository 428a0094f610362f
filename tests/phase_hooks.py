"""Fault injection: act (send a signal, kill the process) the first time a run reaches a given phase.

Used in this process (with pytest's ``monkeypatch.setattr``) and in a subprocess driver (with plain ``setattr``),
so a signal lands exactly in the phase named, with no timing race.
"""

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from src.config import builders
from src.datamodules.base import TensorDataModule
from src.datamodules.vision import VisionDataModule
from src.lit_modules.supervised import SupervisedModule
from src.stop_and_resume.interrupt import StopRequest

PHASES = ("decode", "sanity", "training", "validation", "testing")
TRAINING_CALL = 70  # a forward pass in the middle of the second epoch of 50 steps
VALIDATION_AFTER = 60  # the first evaluation after this many training forward passes: the second validation


def at_phase(phase: str, action: Callable[[], None], patch: Callable[[Any, str, Any], None] = setattr) -> None:
    """``phase``: one of :data:`PHASES`, or ``report``: the run has ended and the command is about to say how."""
    fired, counts = [], {"train": 0, "testing": False}

    def once() -> None:
        if not fired:
            fired.append(phase)
            action()

    if phase == "report":
        leave = StopRequest.__exit__

        def leave_and_act(self: StopRequest, *exc: object) -> None:
            leave(self, *exc)
            once()

        patch(StopRequest, "__exit__", leave_and_act)
    elif phase == "decode":
        decode = VisionDataModule._decode

        def decode_and_act(self: VisionDataModule) -> dict:
            once()
            return decode(self)

        patch(VisionDataModule, "_decode", decode_and_act)
    elif phase == "sanity":
        validation_step = SupervisedModule.validation_step

        def validation_step_and_act(self: SupervisedModule, *args: Any) -> None:
            if self.trainer.sanity_checking:
                once()
            return validation_step(self, *args)

        patch(SupervisedModule, "validation_step", validation_step_and_act)
    else:
        build, test_dataloader = builders.build_model, TensorDataModule.test_dataloader

        def forward_hook(module: Any, inputs: Any, output: Any) -> None:
            if module.training:
                counts["train"] += 1
                if phase == "training" and counts["train"] == TRAINING_CALL:
                    once()
            elif (phase == "validation" and counts["train"] > VALIDATION_AFTER) or (
                phase == "testing" and counts["testing"]
            ):
                once()

        def build_hooked(cfg: Any) -> Any:
            net = build(cfg)
            net.register_forward_hook(forward_hook)
            return net

        def test_dataloader_noted(self: TensorDataModule) -> Any:
            counts["testing"] = True
            return test_dataloader(self)

        patch(builders, "build_model", build_hooked)
        patch(TensorDataModule, "test_dataloader", test_dataloader_noted)


def send(signum: int) -> Callable[[], None]:
    return lambda: os.kill(os.getpid(), signum)


if __name__ == "__main__":  # python -m tests.phase_hooks PHASE SIGNAL train.py-overrides...
    import runpy

    at_phase(sys.argv[1], send(signal.Signals[sys.argv[2]]))
    sys.argv = ["train.py", *sys.argv[3:]]
    runpy.run_path("train.py", run_name="__main__")
