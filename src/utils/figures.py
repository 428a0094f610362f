"""Result plots: confusion matrix for classification, predicted against true values for regression.

Drawn on matplotlib's Agg canvas directly, with fixed margins: pyplot (its backend machinery) and ``tight_layout``
(a second layout pass) would double what a figure costs a short run at its end.
"""

from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image


def _figure(width: float, height: float, margins: tuple[float, float, float, float]) -> Figure:
    """A figure on its own Agg canvas; ``margins``: left, bottom, right, top, in inches."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    left, bottom, right, top = margins
    fig.subplots_adjust(left=left / width, bottom=bottom / height, right=1 - right / width, top=1 - top / height)
    return fig


def confusion_matrix_figure(matrix: torch.Tensor) -> Figure:
    counts = matrix.cpu().numpy()
    n = len(counts)
    side = 0.45 * n  # inches of matrix
    fig = _figure(max(4.5, 1.9 + side), max(3.2, 1.2 + side), margins=(0.7, 0.7, 0.5, 0.5))
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues", vmin=0)  # from 0, so that the text colour below matches the cell
    threshold = counts.max() / 2
    for (row, col), value in np.ndenumerate(counts):
        color = "white" if value > threshold else "black"
        ax.text(col, row, f"{int(value)}", ha="center", va="center", color=color, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    accuracy = counts.trace() / max(counts.sum(), 1)
    ax.set_title(f"Confusion matrix (accuracy {accuracy:.4f})")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return fig


def predicted_vs_true_figure(predicted: torch.Tensor, true: torch.Tensor) -> Figure:
    fig = _figure(5, 5, margins=(0.8, 0.7, 0.3, 0.5))
    ax = fig.add_subplot()
    p, t = predicted.flatten().cpu().numpy(), true.flatten().cpu().numpy()
    ax.scatter(t, p, s=6, alpha=0.6)
    low, high = min(p.min(), t.min()), max(p.max(), t.max())
    ax.plot([low, high], [low, high], "k--", linewidth=1, label="predicted = true")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title("Predicted vs true (test split)")
    ax.legend()
    return fig


def render(fig: Figure, dpi: int = 120) -> np.ndarray:
    """The figure as RGB pixels, drawn once (drawing, not saving, is what a figure costs)."""
    fig.set_dpi(dpi)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def save_pixels(pixels: np.ndarray, path: Path) -> Path:
    Image.fromarray(pixels).save(path)
    return path


def save(fig: Figure, path: Path) -> Path:
    return save_pixels(render(fig), path)


def publish_confusion_matrix(matrix: torch.Tensor, output_dir: Path, loggers: list, step: int) -> Path:
    """``confusion_matrix.png`` in the run directory, and the same picture in TensorBoard when it is logged to."""
    pixels = render(confusion_matrix_figure(matrix))
    for logger in loggers:
        if hasattr(logger, "experiment") and hasattr(logger.experiment, "add_image"):
            logger.experiment.add_image("test/confusion_matrix", pixels, global_step=step, dataformats="HWC")
    return save_pixels(pixels, Path(output_dir) / "confusion_matrix.png")
