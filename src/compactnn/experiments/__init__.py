"""Experiments: single runs and the main comparison job."""

from .runs import build_model, load_run_model, train_run

__all__ = ["build_model", "load_run_model", "train_run"]
