"""Speed measurements: run as modules from the project root, e.g. ``python -m benchmarks.loader_throughput``."""
