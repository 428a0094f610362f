"""Sweep reports: ``summary.csv``, ``summary.md`` and plots, built from the job directories of a multirun."""

from src.report.build import build_report

__all__ = ["build_report"]
