"""Plotting helpers shared by the experiments (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._optional import require

__all__ = ["accuracy_vs_params", "figure", "params_axis"]


@contextmanager
def figure(path: str | Path, figsize=(6.5, 4.5), ncols: int = 1, **kw) -> Iterator:
    """``with figure(path) as ax:`` … draws, then saves ``path`` (120 dpi) and closes."""
    matplotlib = require("matplotlib", what="the plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=figsize, **kw)
    try:
        yield axes
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


def params_axis(ax, ylabel: str = "test accuracy") -> None:
    """Log-scale parameter count on x, a metric on y, a light grid."""
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (log)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")


def accuracy_vs_params(agg: list[dict], path: str | Path, title: str) -> str:
    """One labelled point per config (mean over seeds); returns the Markdown image link."""
    path = Path(path)
    with figure(path, figsize=(7, 4.8)) as ax:
        for a in agg:
            if a["mean"] is None:
                continue
            ax.scatter(a["num_params"], a["mean"])
            ax.annotate(a["name"], (a["num_params"], a["mean"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        params_axis(ax)
        ax.set_title(title)
    return f"![accuracy vs parameters]({path.name})"
