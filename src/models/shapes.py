"""Input-shape checks shared by the models, so a misfit fails at construction with a useful message."""

import math
from collections.abc import Sequence


class ShapeError(ValueError):
    """A model cannot take the data's input shape."""


def as_shape(input_shape: Sequence[int], model: str) -> tuple[int, ...]:
    """Validate a shape given by config (list or tuple of positive ints) and return it as a tuple."""
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d < 1 for d in shape):
        raise ShapeError(f"{model}: input_shape must be non-empty positive sizes, got {list(input_shape)}")
    return shape


def flat_features(input_shape: Sequence[int], model: str) -> int:
    """Number of input features once flattened; vector models take any shape this way."""
    return math.prod(as_shape(input_shape, model))


def image_shape(input_shape: Sequence[int], model: str, min_size: int) -> tuple[int, int, int]:
    """Check a (C, H, W) image shape big enough for the model's downsampling."""
    shape = as_shape(input_shape, model)
    if len(shape) != 3:
        raise ShapeError(
            f"{model} needs image input (channels, height, width), got input_shape {list(shape)}; "
            "use it with data=mnist or data=cifar10, or pick model=perceptron, two_layer or mlp for vector data"
        )
    if min(shape[1:]) < min_size:
        raise ShapeError(f"{model} downsamples to nothing on {list(shape)}: height and width must be >= {min_size}")
    return shape  # type: ignore[return-value]
