"""The config built into objects, and the facts it reads: ``_target_`` signatures, a sweep or not, CUDA or not."""
