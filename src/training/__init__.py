"""What both engines share: objectives, step metrics, schedulers, test-time views, checkpoints and RNG state,
interrupts, throughput."""
