"""ProdSumNet (Wu 2018, arXiv 1809.02209): test error against trainable parameters for the
ProdSum presets (:func:`compactnn.models.prodsumnet_presets`: image-domain products of sums and
transform-domain networks, ~1K–100K parameters, one with exactly the paper's 3,554), DCNNs and
two other structured families (low-rank and Toeplitz single-hidden-layer nets) at the same
budgets, and the reference CNN the paper compresses (conv5×5-32 → pool → conv5×5-64 → pool →
FC-1024 → FC-10, 3,274,634 parameters on 28×28: the ``lenet`` model).

The baselines are matched to a preset's exact count on the data at hand (:func:`matched`): the
DCNN by its width at a fixed depth per budget, the low-rank net by its width at a fixed rank,
the Toeplitz net by its width; the nearest count wins.
"""

from __future__ import annotations

import bisect
from pathlib import Path

from ..config import RunConfig
from ..data import DatasetSpec
from ..models import StructuredMLP
from ..models.prodsumnet import prodsumnet_presets
from .plots import figure, params_axis
from .runner import Experiment, aggregate, budget_config, register_experiment, verdict

#: full budget: epochs on a seeded subset of the training set (the test set is whole)
EPOCHS, LIMIT_TRAIN = 4, 30_000
#: Adam's rate (the "ours" protocol otherwise: cosine, batch 128), each the best on a
#: validation split (scripts/prodsumnet_pilot.py → results/prodsumnet/pilot.md; see
#: ``budget_note``): per family for the presets (from their 3.5k net) and the reference CNN,
LR = {"prodsumnet": 1e-2, "transform-net": 3e-2, "reference-cnn": 1e-3}
#: and per run for the matched baselines (their depth or rank changes with the budget)
BASELINE_LR = {"dcnn-3.5k": 3e-2, "dcnn-10k": 1e-2, "dcnn-30k": 3e-3, "dcnn-100k": 1e-3,
               "lowrank-shl-3.5k": 3e-2, "lowrank-shl-10k": 1e-2, "lowrank-shl-30k": 1e-2,
               "lowrank-shl-100k": 3e-3, "toeplitz-shl-3.5k": 1e-2, "toeplitz-shl-10k": 1e-2,
               "toeplitz-shl-30k": 3e-3, "toeplitz-shl-100k": 1e-3}
#: the reference CNN (3.3M parameters, the slowest run by far): fewer epochs, same subset
REF_EPOCHS = 2
#: budget tiers with matched baselines: tier → (the preset whose count is the target, DCNN
#: depth, low-rank rank); every preset within ±10 % of a tier's target is compared there
TIERS = {"3.5k": ("psn-3.5k", 1, 2), "10k": ("psn-10k", 2, 8), "30k": ("psn-30k", 4, 16),
         "100k": ("tdn-100k", 8, 32)}
NEAR = 0.10
QUICK_PRESETS = ("psn-1k", "psn-3.5k", "tdn-3.5k")
QUICK_TIERS = ("3.5k",)
BASELINES = ("dcnn", "lowrank-shl", "toeplitz-shl")


def _image(data: DatasetSpec) -> tuple[int, ...]:
    shape = tuple(data.input_shape)
    return (1, *shape) if len(shape) == 2 else shape


def _closest(target: int, count, lo: int = 1, hi: int = 1 << 16) -> int:
    """The ``w`` in ``[lo, hi]`` whose non-decreasing ``count(w)`` is nearest ``target``
    (ties: the smaller)."""
    ws = range(lo, hi + 1)
    i = bisect.bisect_left(ws, target, key=count)
    near = [ws[j] for j in (i - 1, i) if 0 <= j < len(ws)]
    return min(near, key=lambda w: (abs(count(w) - target), w))


def matched(family: str, target: int, n_in: int, classes: int, depth: int,
            rank: int) -> tuple[str, dict, int]:
    """``(model, kwargs, count)`` of ``family``'s net whose count is nearest ``target``."""
    if family == "dcnn":
        kw = dict(depth=depth, activation="leaky_relu", negative_slope=0.5)

        def count(w):
            return StructuredMLP.predicted_num_params(n_in, classes, layer="dc", width=w, **kw)
        model = "dcnn"
    elif family == "lowrank-shl":
        kw = dict(layer="lowrank", layer_kwargs={"rank": rank})

        def count(w):
            return StructuredMLP.predicted_num_params(n_in, classes, classifier="dense", **kw,
                                                      width=w)
        model = "shl"
    elif family == "toeplitz-shl":
        kw = dict(layer="toeplitz")

        def count(w):
            return StructuredMLP.predicted_num_params(n_in, classes, classifier="dense", **kw,
                                                      width=w)
        model = "shl"
    else:
        raise ValueError(f"unknown baseline family {family!r}; choose one of "
                         f"{', '.join(BASELINES)}")
    w = _closest(target, count)
    return model, {**kw, "width": w}, count(w)


def _configs(quick: bool, data: DatasetSpec) -> list[RunConfig]:
    shape = _image(data)
    n_in, classes = data.in_features, data.num_classes
    presets = {p["name"]: p for p in prodsumnet_presets(shape, classes)}
    out = []

    def add(name, model, tags, epochs=EPOCHS, **kw):
        d = budget_config(name, quick, epochs, data, model=model, limit_train=LIMIT_TRAIN,
                          tags=tags, **kw).to_dict()
        d["train"]["lr"] = BASELINE_LR[name] if "tier" in tags else LR[tags["family"]]
        out.append(RunConfig.from_dict(d))

    for name, p in presets.items():
        if quick and name not in QUICK_PRESETS:
            continue
        add(name, p["model"], {"family": p["model"]}, **p["kwargs"])
    for tier, (ref, depth, rank) in TIERS.items():
        if quick and tier not in QUICK_TIERS:
            continue
        for family in BASELINES if not quick else ("dcnn", "lowrank-shl"):
            model, kw, _ = matched(family, presets[ref]["num_params"], n_in, classes, depth,
                                   rank)
            add(f"{family}-{tier}", model, {"family": family, "tier": tier}, **kw)
    if not quick:
        add("reference-cnn", "lenet", {"family": "reference-cnn"}, epochs=REF_EPOCHS)
    return out


def _err(a: dict) -> str:
    if a["mean"] is None:
        return f"diverged ({a['diverged']}/{a['n_seeds']})"
    spread = f" ± {100 * a['std']:.2f}" if a["n_seeds"] - a["diverged"] > 1 else ""
    return f"{100 * (1 - a['mean']):.2f}{spread}"


def _report(rows: list[dict], out_dir: Path) -> str:
    agg = aggregate(rows)
    by_name = {a["name"]: a for a in agg}
    lines = ["### Test error against trainable parameters", "",
             "| run | family | parameters | test error % (mean ± std) | seeds |",
             "|---|---|---:|---:|---:|"]
    for a in sorted(agg, key=lambda a: a["num_params"]):
        lines.append(f"| {a['name']} | {a['tags'].get('family', '')} | {a['num_params']:,} | "
                     f"{_err(a)} | {a['n_seeds']} |")
    lines += ["", "### At equal budgets", "",
              "The ProdSum preset against each baseline matched to its parameter count; "
              "`ProdSum better` / `ProdSum worse` only when the mean accuracies differ by more "
              "than the sum of the standard deviations over ≥ 3 seeds (runner.verdict), else "
              "`not settled`.", "",
              "| budget | ProdSum run (params) | error % | baseline (params) | error % | verdict |",
              "|---|---|---:|---|---:|---|"]
    presets = [a for a in agg if a["tags"].get("family") in ("prodsumnet", "transform-net")]
    for tier, (ref, *_) in TIERS.items():
        if ref not in by_name:
            continue
        target = by_name[ref]["num_params"]
        for p in sorted(presets, key=lambda a: a["name"]):
            if abs(p["num_params"] - target) > NEAR * target:
                continue
            for family in BASELINES:
                b = by_name.get(f"{family}-{tier}")
                if b is None:
                    continue
                word = {">": "ProdSum better", "<": "ProdSum worse"}.get(verdict(p, b),
                                                                        "not settled")
                lines.append(f"| {tier} | {p['name']} ({p['num_params']:,}) | {_err(p)} | "
                             f"{b['name']} ({b['num_params']:,}) | {_err(b)} | {word} |")
    families: dict[str, list] = {}
    for a in agg:
        if a["mean"] is not None:
            families.setdefault(a["tags"].get("family", a["name"]), []).append(a)
    with figure(out_dir / "prodsumnet.png", figsize=(7.5, 5)) as ax:
        for fam, pts in sorted(families.items()):
            pts.sort(key=lambda a: a["num_params"])
            ax.errorbar([a["num_params"] for a in pts], [100 * (1 - a["mean"]) for a in pts],
                        yerr=[100 * a["std"] for a in pts], marker="o", capsize=3, label=fam)
        paper = PAPER["rows"][0]
        ax.scatter([paper["params"]], [100 * (1 - paper["value"])], marker="*", s=150,
                   color="k", zorder=5, label="paper: ProdSumNet on MNIST")
        params_axis(ax, ylabel="test error % (mean ± std over seeds)")
        ax.legend(fontsize=7)
    return "\n".join(lines) + "\n\n![test error vs parameters](prodsumnet.png)"


#: the paper's numbers (its abstract: the body was not available to this project), in the
#: format of :mod:`.paper_numbers`
PAPER = {
    "source": "Wu 2018, 'ProdSumNet: reducing model parameters in deep neural networks via "
              "product-of-sums matrix decompositions', arXiv 1809.02209, abstract "
              "(/work/shared/seeds/004_*.txt; the body was not obtainable)",
    "dataset": "MNIST (the 3,554-parameter headline); Fashion-MNIST (no number given)",
    "metric": "test accuracy",
    "budget": "not stated in the available text",
    "text_claims": [
        {"source": "abstract", "claim": (
            "by using this decomposition on a reference CNN architecture for MNIST with over "
            "3x10^6 trainable parameters, we are able to obtain an accuracy of 98.44% using "
            "only 3554 trainable parameters.")},
        {"source": "abstract", "claim": (
            "We show that good accuracy on MNIST and Fashion MNIST can be obtained using a "
            "relatively small number of trainable parameters.")},
        {"source": "abstract", "claim": (
            "One of the advantages of this general framework over prior approaches is that the "
            "number of trainable parameters is not fixed and can be varied arbitrarily.")},
    ],
    "rows": [
        {"label": "ProdSumNet, 3,554 trainable parameters (MNIST)", "key": "psn-3.5k",
         "key_inferred": True, "params": 3554, "value": 0.9844, "status": "ok",
         "source": "abstract",
         "note": ("the paper's architecture is not in the available text; the row is matched "
                  "by the budget only: our psn-3.5k has exactly 3,554 parameters on 28x28x1 "
                  "inputs (a 3-block product-of-sums CNN, channels 10/10/14)")},
        {"label": "Reference CNN, over 3·10^6 trainable parameters (MNIST)",
         "key": "reference-cnn", "key_inferred": True, "params": None,
         "params_text": "> 3,000,000", "value": None, "status": "not reported",
         "source": "abstract",
         "note": ("architecture not in the available text; inferred as conv5x5-32 → pool → "
                  "conv5x5-64 → pool → FC-1024 → FC-10 with 'same' padding = 3,274,634 "
                  "parameters (our lenet); the abstract gives no accuracy for it")},
        {"label": "ProdSumNet (Fashion-MNIST)", "key": None, "params": None, "value": None,
         "status": "not reported", "source": "abstract",
         "claim": "good accuracy ... using a relatively small number of trainable parameters"},
    ],
}


register_experiment(Experiment(
    name="prodsumnet", title="ProdSumNet: test error vs trainable parameters",
    description="ProdSum presets (image-domain products of sums `psn-*`, transform-domain "
                "networks `tdn-*`; `psn-3.5k` has exactly the paper's 3,554 parameters) "
                "against DCNNs, low-rank and Toeplitz single-hidden-layer nets matched to the "
                "same parameter counts, and the >3M-parameter reference CNN, on Fashion-MNIST "
                "(MNIST when the data set resolves to mnist).",
    configs=_configs, report=_report, paper=PAPER, seeds=(0, 1, 2),
    budget_note=f"full: Adam with a cosine schedule, batch 128, {EPOCHS} epochs on a seeded "
                f"{LIMIT_TRAIN:,}-image subset of the training set (cut from 60,000), the whole "
                f"test set; the reference CNN {REF_EPOCHS} epochs on the same subset; 3 seeds "
                f"(paper: budget not stated). Every rate is the best of 3e-4, 1e-3, 3e-3, 1e-2, "
                "3e-2, 1e-1 (reference CNN: 1e-3, 1e-2) on a validation split — a seeded "
                "25,000-image subset of the training set, 5,000 of them held out, seed 0 — with "
                "the test set unused (`scripts/prodsumnet_pilot.py`, "
                "results/prodsumnet/pilot.md): each matched baseline at each budget its own ("
                + ", ".join(f"{k} {v:g}" for k, v in BASELINE_LR.items())
                + "); the presets their family's rate from its 3.5k net ("
                + ", ".join(f"{k} {v:g}" for k, v in LR.items())
                + "), untuned at the larger budgets (a handicap, if anything). quick: 1 "
                "epoch on 2,000 images, "
                f"presets {', '.join(QUICK_PRESETS)} and the DCNN and low-rank nets at the 3.5k "
                "budget only, no reference CNN, one seed"))
