"""Fig. 2a/2b of Araujo et al. (2020): where to put the non-linearities in a deep DCNN — a
ReLU every k DC layers (identity between), or a leaky ReLU — with the paper's initialization
and with our activation-aware one (:func:`compactnn.init.aware_variances`) as a control.

The question the control answers: the paper's init (``c ~ N(0, 2/n)``) keeps ``E||z||²``
constant only with a ReLU after every layer; with a ReLU every 3 layers it grows ×4 per block
(≈ 10⁶ at depth 30). If the sparse-non-linearity schedules degrade with depth under the paper's
init and not under the aware one, the degradation is the initialization, not the schedule.
"""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig
from ..data import DatasetSpec
from .paper_numbers import PAPER_TABLES
from .plots import figure
from .runner import Experiment, aggregate, budget_config, register_experiment, verdict

#: (name, activation, slope, ReLU/leaky every k layers, with the aware control)
SCHEDULES = (("relu-every1", "relu", 0.5, 1, False),  # aware = paper here (but the classifier)
             ("relu-every2", "relu", 0.5, 2, True),
             ("relu-every3", "relu", 0.5, 3, True),
             ("leaky0.5", "leaky_relu", 0.5, 1, True),
             ("leaky0.5-every3", "leaky_relu", 0.5, 3, True),
             ("leaky0.2", "leaky_relu", 0.2, 1, True),
             ("leaky0.3", "leaky_relu", 0.3, 1, True))
#: depth → the schedules run at that depth (the paper's curves end at 40 layers); the deep,
#: contested cells first, so that an interrupted run has them
DEPTHS = {30: [s[0] for s in SCHEDULES],
          40: ["relu-every1", "relu-every3", "leaky0.5", "leaky0.5-every3"],
          10: [s[0] for s in SCHEDULES],
          20: ["leaky0.2", "leaky0.3"]}  # Fig. 2b: slope 0.2 fails from 20 layers
QUICK_DEPTHS = {2: [s[0] for s in SCHEDULES], 4: ["relu-every3", "leaky0.5-every3"]}
EPOCHS, LIMIT_TRAIN = 20, 10_000


def _configs(quick: bool, data: DatasetSpec) -> list[RunConfig]:
    out = []
    for depth, names in (QUICK_DEPTHS if quick else DEPTHS).items():
        for name, act, slope, every, control in SCHEDULES:
            if name not in names:
                continue
            for init in ("paper", "aware") if control else ("paper",):
                suffix = "" if init == "paper" else "-aware"
                out.append(budget_config(
                    f"{name}-depth{depth}{suffix}", quick, EPOCHS, data, model="dcnn",
                    limit_train=LIMIT_TRAIN, protocol="paper", depth=depth, activation=act,
                    negative_slope=slope, nonlinearity_every=every, init=init,
                    tags={"schedule": name, "init": init, "depth": depth}))
    return out


def _fmt(a: dict | None) -> str:
    if a is None:
        return "—"
    if a["mean"] is None:
        return f"diverged ({a['diverged']}/{a['n_seeds']})"
    extra = f", {a['diverged']} diverged" if a["diverged"] else ""
    spread = f" ± {a['std']:.4f}" if a["n_seeds"] - a["diverged"] > 1 else ""
    return f"{a['mean']:.4f}{spread} (n={a['n_seeds']}{extra})"


def _report(rows: list[dict], out_dir: Path) -> str:
    agg = {a["name"]: a for a in aggregate(rows)}
    cells: dict[tuple[str, str], dict[int, dict]] = {}
    for a in agg.values():
        t = a["tags"]
        cells.setdefault((t["schedule"], t["init"]), {})[t["depth"]] = a
    with figure(out_dir / "nonlinearity.png", figsize=(11, 4.2), ncols=2, sharey=True) as axes:
        for ax, init in zip(axes, ("paper", "aware"), strict=True):
            for (sched, i), pts in sorted(cells.items()):
                if i != init:
                    continue
                ds = sorted(pts)
                means = [pts[d]["mean"] if pts[d]["mean"] is not None else 0.1 for d in ds]
                stds = [pts[d]["std"] for d in ds]
                ax.errorbar(ds, means, yerr=stds, marker="o", capsize=3, label=sched)
            ax.set_xlabel("hidden DC layers")
            ax.set_title(f"init: {init}" + (" (c ~ N(0, 2/n))" if init == "paper" else
                                            " (σ² = 1/g per layer)"), fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        axes[0].set_ylabel("test accuracy (mean ± std over seeds)")
    depths = sorted({d for pts in cells.values() for d in pts})
    lines = ["### Paper init vs activation-aware init", "",
             "Same schedule, depth, data and seeds; verdict `aware better` / `paper better` "
             "only when the means differ by more than the sum of the standard deviations "
             "over ≥ 3 seeds, else `not settled`.", "",
             "| schedule | depth | paper init | aware init | verdict |",
             "|---|---:|---:|---:|---|"]
    for sched, *_ in SCHEDULES:
        for d in depths:
            p, w = cells.get((sched, "paper"), {}).get(d), cells.get((sched, "aware"), {}).get(d)
            if p is None or w is None:
                continue
            v = verdict(w, p)
            word = {">": "aware better", "<": "paper better"}.get(v, v)
            lines.append(f"| {sched} | {d} | {_fmt(p)} | {_fmt(w)} | {word} |")
    lines += ["", "### Does depth hurt? (deepest vs shallowest depth, same schedule and init)",
              "", "| schedule | init | " + " | ".join(f"depth {d}" for d in depths)
              + " | deepest vs shallowest |", "|---|---|" + "---:|" * (len(depths) + 1)]
    for (sched, init), pts in sorted(cells.items()):
        ds = sorted(pts)
        v = verdict(pts[ds[-1]], pts[ds[0]]) if len(ds) > 1 else "not settled"
        word = {">": "deeper better", "<": "deeper worse"}.get(v, v)
        lines.append(f"| {sched} | {init} | "
                     + " | ".join(_fmt(pts.get(d)) for d in depths) + f" | {word} |")
    return "\n".join(lines) + "\n\n![accuracy vs depth](nonlinearity.png)"


def _paper() -> dict:
    """The paper's Fig. 2 numbers, each row keyed to our config of the same schedule and depth
    when the full grid runs one (the others keep ``key=None``: shown, not matched)."""
    names = {f"{n}-depth{d}" for d, ns in DEPTHS.items() for n in ns}
    table = dict(PAPER_TABLES["nonlinearity"])
    table["rows"] = [{**r, "key": r["key"] if r.get("key") in names else None}
                     for r in table["rows"]]
    return table


register_experiment(Experiment(
    name="nonlinearity", title="Fig. 2a/2b: where to put the non-linearities",
    description="DCNN (width = input size, DC classifier) on flattened images: depth × "
                "{ReLU every 1/2/3 layers, leaky-ReLU 0.5 every 1/3 layers, leaky-ReLU 0.2 and "
                "0.3}, each with the "
                "paper's init and (our control) the activation-aware init.",
    configs=_configs, report=_report, paper=_paper(), seeds=(0, 1, 2),
    budget_note=f"full: the paper's optimisation (Adam, batch 200, lr 5e-5 with the "
                f"piecewise-constant steps at 40/60/80 % of training — our placement) for "
                f"{EPOCHS} epochs on {LIMIT_TRAIN:,} training images (paper: 200 epochs on "
                f"CIFAR-10's 50,000), depths 10/30/40 (paper: 2–40; slopes 0.2/0.3 at "
                f"10/20/30), 3 seeds (paper: 1); quick: 1 epoch on 2,000 "
                f"images, depths 2/4, one seed"))
