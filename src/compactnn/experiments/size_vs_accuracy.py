"""Fig. 4a / Table 1 of Araujo et al. (2020): test accuracy against the number of parameters,
for DCNNs and the structured baselines, plus a narrow dense MLP with each DCNN's budget."""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig
from ..data import DatasetSpec
from ..models import StructuredMLP
from .paper_numbers import PAPER_TABLES
from .plots import figure, params_axis
from .runner import Experiment, aggregate, budget_config, register_experiment


def narrow_width(params: int, n_in: int, classes: int) -> int:
    """Width of a one-hidden-layer dense MLP with about ``params`` parameters."""
    return max(1, round((params - classes) / (n_in + 1 + classes)))


def _configs(quick: bool, data: DatasetSpec) -> list[RunConfig]:
    n_in, classes = data.in_features, data.num_classes
    out = []

    def add(name, family, model, **kw):
        out.append(budget_config(name, quick, 5, data, model=model,
                                 tags={"family": family}, **kw))

    for k in ((1, 4) if quick else (1, 2, 4, 8)):
        add(f"dcnn-{k}", "dcnn", "dcnn", depth=k, activation="leaky_relu", negative_slope=0.5)
        add(f"dtnn-{k}", "dtnn", "mlp", layer="dtnn", depth=k, activation="leaky_relu",
            negative_slope=0.5)
        add(f"toeplitz-{k}", "toeplitz", "mlp", layer="toeplitz", depth=k, activation="relu")
        add(f"acdc-{k}", "acdc", "mlp", layer="acdc", depth=k, activation="relu",
            layer_kwargs={"permute": True})
        add(f"circproj-{k}", "circproj", "mlp", layer="circulant_projection", depth=k,
            activation="relu")
        dc_params = StructuredMLP.predicted_num_params(n_in, classes, layer="dc", depth=k)
        add(f"narrow-dense-{k}", "narrow-dense", "dense-mlp", depth=1,
            width=narrow_width(dc_params, n_in, classes))
    for r in ((2, 16) if quick else (2, 8, 32)):
        add(f"lowrank-r{r}", "lowrank", "mlp", layer="lowrank", depth=2, activation="relu",
            layer_kwargs={"rank": r})
    for r in ((1,) if quick else (1, 2, 4)):
        add(f"toeplitz-like-shl-r{r}", "toeplitz-like-shl", "shl", layer="toeplitz_like",
            layer_kwargs={"rank": r})
    add("dense", "dense", "dense-mlp", depth=1, width=n_in)
    return out


def pareto(points: list[tuple[int, float, str]]) -> list[tuple[int, float, str]]:
    """The points no other point beats with fewer (or equal) parameters."""
    front, best = [], -1.0
    for p in sorted(points):
        if p[1] > best:
            front.append(p)
            best = p[1]
    return front


def _report(rows: list[dict], out_dir: Path) -> str:
    fams: dict[str, list] = {}
    for a in aggregate(rows):
        if a["mean"] is not None:
            fams.setdefault(a["tags"]["family"], []).append((a["num_params"], a["mean"],
                                                             a["name"]))
    front = pareto([p for pts in fams.values() for p in pts])
    with figure(out_dir / "size_vs_accuracy.png", figsize=(7.5, 5)) as ax:
        for fam, pts in sorted(fams.items()):
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=fam)
        ax.plot([p[0] for p in front], [p[1] for p in front], "k:", lw=2, label="Pareto front")
        params_axis(ax)
        ax.legend(fontsize=7, ncol=2)
    return ("Pareto front (fewest parameters for a given accuracy): "
            + ", ".join(f"{p[2]} ({p[0]:,}: {p[1]:.4f})" for p in front)
            + "\n\n![accuracy vs parameters](size_vs_accuracy.png)")


register_experiment(Experiment(
    name="size-vs-accuracy", title="Fig. 4a / Table 1: accuracy per parameter",
    description="DCNN, DTNN, Toeplitz, ACDC, circulant projection, low-rank, "
                "Toeplitz-like LDR (SHL protocol), a dense MLP, and a *narrow dense MLP with "
                "the same parameter count as each DCNN* (the honest baseline the paper omits).",
    configs=_configs, report=_report, paper=PAPER_TABLES["size-vs-accuracy"], seeds=(0, 1, 2),
    budget_note="full: 5 epochs per run (paper: 200), Adam 1e-3 cosine, batch 128, 3 seeds; "
                "quick: 1 epoch on 2,000 images, one seed"))
