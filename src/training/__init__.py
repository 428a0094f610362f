"""What a training step computes, the same in both engines: loss and metrics by task, schedulers, test-time views,
batch limits, throughput."""
