"""Small helpers: console output, figures, predictions, image folders, a progress bar, fast start."""
