"""Fig. 2a/2b of Araujo et al. (2020): where to put the non-linearities in a deep DCNN — a
ReLU every k DC layers (identity between), or a leaky ReLU of slope a after every layer."""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig
from ..data import DatasetSpec
from .paper_numbers import PAPER_TABLES
from .plots import figure
from .runner import Experiment, budget_config, register_experiment


def _configs(quick: bool, data: DatasetSpec) -> list[RunConfig]:
    depths = (2, 10) if quick else (2, 5, 10, 20, 30)
    out = []
    for depth in depths:
        for every in (1, 2, 3):
            out.append(budget_config(f"relu-every{every}-depth{depth}", quick, 3, data,
                                     model="dcnn", depth=depth, activation="relu",
                                     nonlinearity_every=every))
        for slope in (0.2, 0.3, 0.5):
            out.append(budget_config(f"leaky{slope}-depth{depth}", quick, 3, data, model="dcnn",
                                     depth=depth, activation="leaky_relu",
                                     negative_slope=slope))
    return out


def _series(model: dict) -> str:
    """The curve a run belongs to, from its model config."""
    if model.get("activation") == "relu":
        return f"relu-every{model.get('nonlinearity_every', 1)}"
    return f"leaky{model.get('negative_slope', 0.5)}"


def _report(rows: list[dict], out_dir: Path) -> str:
    groups: dict[str, dict[int, list[float]]] = {}
    for r in rows:
        acc = float("nan") if r["diverged"] else r["test"]
        groups.setdefault(_series(r["model"]), {}).setdefault(r["model"]["depth"], []).append(acc)
    with figure(out_dir / "nonlinearity.png", figsize=(11, 4.2), ncols=2, sharey=True) as axes:
        for key, pts in sorted(groups.items()):
            ax = axes[0] if key.startswith("relu") else axes[1]
            ds = sorted(pts)
            ax.plot(ds, [sum(pts[d]) / len(pts[d]) for d in ds], marker="o", label=key)
        for ax, title in zip(axes, ("ReLU every k DC layers (identity between)",
                                    "leaky-ReLU slope, after every DC layer"), strict=True):
            ax.set_xlabel("number of hidden DC layers")
            ax.set_title(title, fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        axes[0].set_ylabel("test accuracy")
    return "![accuracy vs depth](nonlinearity.png)"


register_experiment(Experiment(
    name="nonlinearity", title="Fig. 2a/2b: where to put the non-linearities",
    description="DCNN (width = input size, DC classifier) on flattened images: depth × "
                "{ReLU every 1/2/3 layers} and × {leaky-ReLU slope 0.2/0.3/0.5}.",
    configs=_configs, report=_report, paper=PAPER_TABLES["nonlinearity"],
    budget_note="full: 3 epochs per run (paper: 200), Adam 1e-3 cosine, batch 128; "
                "quick: 1 epoch on 2,000 images"))
