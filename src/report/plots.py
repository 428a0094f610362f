"""Sweep plots: the optimized metric against the learning rate per optimizer, all validation curves, and the
spread of each group of seeds."""

import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: works on machines without a display
import matplotlib.pyplot as plt

from src.report.jobs import Job
from src.report.seeds import Group


def plot_metric_vs_lr(jobs: list[Job], path: Path) -> None:
    by_optimizer: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for job in jobs:
        if job.succeeded and job.lr > 0:
            by_optimizer[job.optimizer or "optimizer"].append((job.lr, job.value))
    fig, ax = plt.subplots(figsize=(6, 4))
    for optimizer, points in sorted(by_optimizer.items()):
        lrs, values = zip(*sorted(points), strict=True)
        ax.plot(lrs, values, marker="o", label=optimizer)
    ax.set_xscale("log")
    values = [v for points in by_optimizer.values() for _, v in points]
    if values and min(values) > 0 and jobs[0].mode == "min":
        ax.set_yscale("log")  # losses span decades across learning rates
    ax.set_xlabel("learning rate")
    ax.set_ylabel(jobs[0].metric if jobs else "")
    ax.set_title("Optimized metric vs learning rate (completed jobs)")
    if by_optimizer:
        ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_val_loss_curves(jobs: list[Job], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(10, 4.5))
    colors = plt.get_cmap("tab20").colors
    for i, job in enumerate(jobs):
        if job.val_loss:
            epochs, losses = zip(*job.val_loss, strict=True)
            style = "-" if job.succeeded else ":"
            label = f"{job.name}: {job.overrides}"[:60]
            ax.plot(epochs, losses, style, marker=".", color=colors[i % len(colors)], label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("val/loss")
    ax.set_yscale("log")
    ax.set_title("Validation loss of every job (dotted: failed)")
    if ax.lines:
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_groups(groups: list[Group], metric: str, path: Path) -> None:
    shown = [g for g in groups if g.completed]
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(shown) + 2), 4))
    means = [g.metric.mean for g in shown]
    errors = [0 if math.isnan(g.metric.half_width) else g.metric.half_width for g in shown]
    ax.errorbar(range(len(shown)), means, yerr=errors, fmt="o", capsize=4)
    for x, group in enumerate(shown):
        ax.plot([x] * len(group.completed), [job.value for job in group.completed], ".", color="gray", alpha=0.6)
    ax.set_xticks(range(len(shown)), [g.overrides for g in shown], rotation=20, ha="right", fontsize="small")
    ax.set_ylabel(metric)
    ax.set_title("Mean and 95% interval per group (dots: seeds)")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
