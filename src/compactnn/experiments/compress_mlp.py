"""Compress a trained dense MLP (issue 14): each structured family fitted to the trained hidden
layers (``compactnn.compress``), test accuracy right after the fit, after fine-tuning, after
fine-tuning by distillation from the dense model, against the same structured MLP trained from
scratch for as many epochs as the compressed one saw in total.

No paper reports these numbers: the experiment answers the practitioner's question "what does
making my trained layers N× smaller cost?", not a paper's table.
"""

from __future__ import annotations

import copy
import math
import statistics
from pathlib import Path

import torch

from .._optional import progress_bar
from ..compress import CompressionPolicy, apply_structure, compress, evaluate_model, finetune
from ..config import TrainConfig
from ..data import load_dataset
from ..models import make_model
from ..train import NonFiniteLossError, write_json
from .plots import figure, params_axis
from .runner import Experiment, format_summary, register_experiment, seed_summary, verdict

#: (family, target ratio or None for a family of fixed size); the fixed-size families have one
#: size per layer shape (circulant/Toeplitz/DC/DTNN/ACDC), low-rank and hashed two targets
CELLS = (("circulant", None), ("toeplitz", None), ("dc", None), ("dtnn", None),
         ("acdc", None), ("lowrank", 10), ("lowrank", 50), ("hashed", 10), ("hashed", 50))
SEEDS = (0, 1, 2)
STAGES = ("compressed", "finetuned", "distilled", "scratch")

#: full: Fashion-MNIST, 784-256-256-10; quick: digits, 64-32-32-10
FULL = {"data": "auto", "width": 256, "dense_epochs": 8, "ft_epochs": 2, "seeds": SEEDS}
QUICK = {"data": "digits", "width": 32, "dense_epochs": 15, "ft_epochs": 3, "seeds": (0,)}

PAPER = {
    "source": "none: no paper reports compress-then-fine-tune of these families",
    "dataset": "Fashion-MNIST (ours)", "metric": "test accuracy",
    "budget": "not reported",
    "rows": [{"label": "a trained dense MLP compressed by each family, fine-tuned or distilled",
              "key": None, "params": None, "value": None, "status": "not reported",
              "source": "— (issue 14 asks for this measurement; no paper has it)"}],
}


def _train_cfg(epochs: int) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=128, optimizer="adam", lr=1e-3,
                       schedule="cosine")


def _hidden_params(model: torch.nn.Module) -> int:
    """Trainable parameters of the hidden layers (all but the dense classifier)."""
    clf = model.net[-1]
    return sum(p.numel() for p in model.parameters() if p.requires_grad) - sum(
        p.numel() for p in clf.parameters() if p.requires_grad)


def _acc(model, data, cfg) -> float:
    return evaluate_model(model, data, cfg)["acc"]


def _train(model, data, epochs: int, seed: int, teacher=None) -> float:
    """Train in place; the final test accuracy, NaN when the loss diverged."""
    cfg = _train_cfg(epochs)
    try:
        finetune(model, data, cfg, teacher=teacher, seed=seed)
    except NonFiniteLossError:
        return math.nan
    return _acc(model, data, cfg)


def _label(family: str, ratio) -> str:
    return family if ratio is None else f"{family} ≥{ratio}×"


def run_cell(family: str, ratio, dense, data, *, width: int, dense_epochs: int,
             ft_epochs: int, seed: int) -> dict:
    """One family (and target) on one seed's trained dense MLP: the four accuracies."""
    policy = CompressionPolicy(family, ratio=ratio, min_size=width * width)
    model, report = compress(dense, policy)
    clf = next(n for n, m in dense.named_modules() if m is dense.net[-1])
    out = {"family": family, "ratio": ratio, "seed": seed,
           "hidden_params": _hidden_params(model), "report": report.to_dict(),
           # hidden layers the family cannot fit to the target: they stay dense
           "kept": {s["name"]: s["reason"] for s in report.skipped if s["name"] != clf},
           "compressed": _acc(model, data, _train_cfg(1))}
    out["finetuned"] = _train(copy.deepcopy(model), data, ft_epochs, seed)
    out["distilled"] = _train(copy.deepcopy(model), data, ft_epochs, seed, teacher=dense)
    torch.manual_seed(seed)
    scratch = apply_structure(_dense_mlp(data, width), policy)
    out["scratch"] = _train(scratch, data, dense_epochs + ft_epochs, seed)
    return out


def _dense_mlp(data, width: int) -> torch.nn.Module:
    return make_model("dense-mlp", data.in_features, data.num_classes, width=width, depth=2)


def _compress_mlp(*, quick: bool, out_dir: Path, log) -> str:
    s = QUICK if quick else FULL
    data = load_dataset(s["data"])
    for note in data.notes:
        log(f"note: {note}")
    width, seeds = s["width"], s["seeds"]
    runs, dense_acc, dense_params = [], [], None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: more threads only add synchronisation
    try:
        jobs = [(seed, cell) for seed in seeds for cell in CELLS]
        dense = None
        for seed, (family, ratio) in progress_bar(jobs, desc="compress-mlp", leave=False):
            if dense is None or dense[0] != seed:  # one dense MLP per seed, shared by cells
                torch.manual_seed(seed)
                model = _dense_mlp(data, width)
                acc = _train(model, data, s["dense_epochs"], seed)
                dense, dense_params = (seed, model.eval()), _hidden_params(model)
                dense_acc.append(acc)
                log(f"compress-mlp seed {seed}: dense MLP test acc {acc:.4f}")
            r = run_cell(family, ratio, dense[1], data, width=width,
                         dense_epochs=s["dense_epochs"], ft_epochs=s["ft_epochs"], seed=seed)
            runs.append(r)
            log(f"compress-mlp seed {seed} {_label(family, ratio)}: "
                + ", ".join(f"{k} {r[k]:.4f}" for k in STAGES))
    finally:
        torch.set_num_threads(threads)
    table = {}
    for family, ratio in CELLS:
        mine = [r for r in runs if r["family"] == family and r["ratio"] == ratio]
        errs = [[lay["rel_error"] for lay in r["report"]["layers"]] for r in mine]
        table[_label(family, ratio)] = {
            "family": family, "ratio": ratio, "hidden_params": mine[0]["hidden_params"],
            "rel_error": [statistics.fmean(e) for e in zip(*errs, strict=True)],
            "kept": mine[0]["kept"],
            **{k: seed_summary([r[k] for r in mine]) for k in STAGES}}
    dense_cell = seed_summary(dense_acc)
    write_json(out_dir / "results.json", {
        "quick": quick, "settings": {k: list(v) if isinstance(v, tuple) else v
                                     for k, v in s.items()},
        "dataset": data.name, "source": data.source, "notes": data.notes,
        "dense": {"hidden_params": dense_params, "acc": dense_acc, **dense_cell},
        "table": table, "runs": runs})
    _plot(table, dense_cell, dense_params, out_dir / "compress_mlp.png")
    lines = ["| family (target) | hidden params | ratio | rel. error ‖W−Ŵ‖/‖W‖ (layer 1, 2) | "
             "after fit | fine-tuned | distilled | from scratch | fine-tuned vs scratch | "
             "distilled vs fine-tuned |", "|---|---:|---:|---|---:|---:|---:|---:|---|---|"]
    for label, t in table.items():
        v1 = _word(verdict(t["finetuned"], t["scratch"]), "compressed better",
                   "scratch better")
        v2 = _word(verdict(t["distilled"], t["finetuned"]), "distillation better",
                   "plain fine-tuning better")
        errs = ", ".join([f"{e:.3f}" for e in t["rel_error"]]
                         + [f"{name} kept dense †" for name in t["kept"]])
        lines.append(f"| {label} | {t['hidden_params']:,} | "
                     f"{dense_params / t['hidden_params']:.0f}× | {errs} | "
                     + " | ".join(format_summary(t[k]) for k in STAGES)
                     + f" | {v1} | {v2} |")
    seeds_text = ", ".join(map(str, seeds))
    kept = [f"{label}: {name} ({why})" for label, t in table.items()
            for name, why in t["kept"].items()]
    if kept:  # such a row is not at its target: say so under the table
        lines.append("\n† Not compressed: the family cannot reach the target at this layer's "
                     "size, so it stays dense and the row's ratio is the measured one — "
                     + "; ".join(kept) + ".")
    return (f"Data: {data.name} ({data.source}). A dense MLP {data.in_features}-{width}-{width}-"
            f"{data.num_classes} (ReLU) trained {s['dense_epochs']} epochs (Adam 1e-3, cosine, "
            f"batch 128) reaches test accuracy **{format_summary(dense_cell)}** with "
            f"{dense_params:,} hidden-layer parameters. Its two hidden layers are then replaced "
            "by each family "
            "(`compactnn.compress`, fitted to the trained weights; the classifier stays "
            "dense): accuracy right after the fit, after "
            f"{s['ft_epochs']} epoch(s) of fine-tuning, after {s['ft_epochs']} epoch(s) of "
            "distillation from the dense model (T = 4, α = 0.9), and the same structured MLP "
            f"trained from scratch for {s['dense_epochs'] + s['ft_epochs']} epochs (the total "
            f"the compressed model saw). Seeds {seeds_text} (the dense model, its training and "
            "fine-tuning order); mean ± std over seeds. Low-rank and hashed layers take the "
            "largest size whose parameter count is at most 1/10 or 1/50 of the dense layer's "
            "(a layer where none does stays dense, marked †); the other families have one size "
            "per layer shape (their ratio is what it is).\n\n"
            + "\n".join(lines) + "\n\nVerdicts: a difference larger than the summed standard "
            "deviations over ≥ 3 seeds, else 'not settled'.\n\n"
            "![test accuracy vs hidden-layer parameters](compress_mlp.png)")


def _word(v: str, better: str, worse: str) -> str:
    return {">": better, "<": worse}.get(v, v)


def _plot(table: dict, dense: dict, dense_params: int, path: Path) -> None:
    markers = {"compressed": "x", "finetuned": "o", "distilled": "s", "scratch": "^"}
    with figure(path, figsize=(8, 5)) as ax:
        for stage, mk in markers.items():
            pts = [(t["hidden_params"], t[stage]["mean"], label) for label, t in table.items()
                   if t[stage]["mean"] is not None]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=mk, label=stage)
            if stage == "finetuned":
                for x, y, label in pts:
                    ax.annotate(label, (x, y), fontsize=6, xytext=(3, 3),
                                textcoords="offset points")
        if dense["mean"] is not None:
            ax.scatter([dense_params], [dense["mean"]], marker="*", s=120, c="k",
                       label="dense (trained)")
        params_axis(ax, "test accuracy (mean over seeds)")
        ax.set_xlabel("hidden-layer parameters (log)")
        ax.legend(fontsize=7)


register_experiment(Experiment(
    name="compress-mlp", title="Compressing a trained MLP: fit, fine-tune, distil vs scratch",
    description="A dense MLP trained on Fashion-MNIST, its hidden layers replaced by each "
                "structured family fitted to the trained weights (`compactnn.compress`); test "
                "accuracy after the fit, after fine-tuning, after distillation from the dense "
                "model, against the structured MLP trained from scratch.",
    custom=_compress_mlp, paper=PAPER, seeds=SEEDS,
    budget_note="full: Fashion-MNIST, 784-256-256-10, dense 8 epochs, fine-tuning and "
                "distillation 2 epochs each, scratch 10 epochs, 9 family/target cells × 3 "
                "seeds (no paper budget to compare: no paper reports this); quick: digits, "
                "64-32-32-10, dense 15 epochs, 3 per stage, one seed (a smoke test, not a result)"))
