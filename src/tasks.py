"""The three supervised tasks a data config can declare; the task picks the loss and the metrics."""

from enum import Enum


class Task(str, Enum):
    REGRESSION = "regression"
    BINARY = "binary"
    MULTICLASS = "multiclass"

    @classmethod
    def parse(cls, value: "str | Task") -> "Task":
        """Accept the name typed in a config; an unknown one lists the valid names."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"unknown task {value!r}; choose one of {[t.value for t in cls]}") from None
