"""Lightning's ``limit_*_batches``, in one place for both engines and the start-up check."""


def batch_limit(value: float | int | None, batches: int) -> int | None:
    """An int is a count, a float a fraction of the ``batches`` of an epoch, rounded down as Lightning rounds it
    (a fraction that rounds to no batch is refused at start-up); None is no limit."""
    if value is None:
        return None
    return int(value) if isinstance(value, int) else int(float(value) * batches)
