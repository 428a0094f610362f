"""Result plots: confusion matrix for classification, predicted against true values for regression."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: works without a display
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure


def confusion_matrix_figure(matrix: torch.Tensor) -> Figure:
    counts = matrix.cpu().numpy()
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * len(counts), 1 + 0.5 * len(counts)))
    image = ax.imshow(counts, cmap="Blues")
    for (row, col), value in zip(
        ((r, c) for r in range(len(counts)) for c in range(len(counts))), counts.flat, strict=True
    ):
        color = "white" if value > counts.max() / 2 else "black"
        ax.text(col, row, f"{int(value)}", ha="center", va="center", color=color, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xticks(range(len(counts)))
    ax.set_yticks(range(len(counts)))
    accuracy = counts.trace() / max(counts.sum(), 1)
    ax.set_title(f"Confusion matrix (accuracy {accuracy:.4f})")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def predicted_vs_true_figure(predicted: torch.Tensor, true: torch.Tensor) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 5))
    p, t = predicted.flatten().cpu().numpy(), true.flatten().cpu().numpy()
    ax.scatter(t, p, s=6, alpha=0.6)
    low, high = min(p.min(), t.min()), max(p.max(), t.max())
    ax.plot([low, high], [low, high], "k--", linewidth=1, label="predicted = true")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title("Predicted vs true (test split)")
    ax.legend()
    fig.tight_layout()
    return fig


def render(fig: Figure, dpi: int = 120) -> np.ndarray:
    """The figure as RGB pixels, drawn once (drawing, not saving, is what a figure costs), then closed."""
    fig.set_dpi(dpi)
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return pixels


def save(fig: Figure, path: Path) -> Path:
    plt.imsave(path, render(fig))
    return path


def publish_confusion_matrix(matrix: torch.Tensor, output_dir: Path, loggers: list, step: int) -> Path:
    """``confusion_matrix.png`` in the run directory, and the same picture in TensorBoard when it is logged to."""
    pixels = render(confusion_matrix_figure(matrix))
    for logger in loggers:
        if hasattr(logger, "experiment") and hasattr(logger.experiment, "add_image"):
            logger.experiment.add_image("test/confusion_matrix", pixels, global_step=step, dataformats="HWC")
    path = Path(output_dir) / "confusion_matrix.png"
    plt.imsave(path, pixels)
    return path
