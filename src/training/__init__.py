"""What both engines share: objectives, schedulers, test-time views, checkpoints and RNG state, interrupts."""
