"""What stops a run cleanly and what it resumes from, the same in both engines: SIGTERM and Ctrl-C handling, and the
checkpoint files with their weights and RNG states."""
