"""Run bookkeeping: the record of each run, resuming and reusing runs, rebuilding a finished run."""
