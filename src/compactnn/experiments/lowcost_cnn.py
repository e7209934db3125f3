"""Low-cost CNNs (Treister, Ruthotto, Sharoni, Zafrani, Haber 2018, seed 003; Ephrath et al.,
LeanConvNets 2020): test accuracy against parameters and against FLOPs for every conv operator
× block type of ``lowcost-resnet``, each against the fully coupled ResNet (operator ``full``)
of the same widths and block.

The question: do the sparsely coupled operators (circulant, diagonal-circulant, lean,
depthwise-separable) reach the fully coupled network's accuracy with far fewer weights and
multiply-adds — the papers' claim — at a budget two CPU cores can afford? A verdict (better /
worse / not settled) rests on three seeds per cell (:func:`~.runner.verdict`).
"""

from __future__ import annotations

import math
from pathlib import Path

from ..config import RunConfig
from ..conv.blocks import BLOCKS
from ..data import DatasetSpec, resolve_dataset
from ..models import make_model, measure_cost
from .plots import figure
from .runner import Experiment, aggregate, budget_config, register_experiment, verdict

__all__ = ["BATCH", "CONVS", "EPOCHS", "LIMIT_TRAIN", "RECIPE", "WIDTHS"]

#: the operators compared, the baseline first
CONVS = ("full", "circulant", "dc", "lean", "separable")
#: the full budget (see the experiment's budget note for what it cuts from the template)
WIDTHS, STEPS, EPOCHS, LIMIT_TRAIN, BATCH = (16, 32, 64), 1, 2, 8_000, 32
#: the quick (smoke) budget: every operator and every block once, two of them with their full
#: baseline (the page's other cells then say "no baseline")
QUICK_WIDTHS, QUICK_LIMIT = (4, 8), 1_000
QUICK_CELLS = [("full", "explicit"), ("full", "residual"), ("circulant", "explicit"),
               ("dc", "imex"), ("lean", "symmetric"), ("separable", "residual")]
#: the group's optimisation (Meganet template): SGD, momentum 0.9, weight decay 2e-4, LR 0.05,
#: batch 32; the cosine schedule is ours (the template's is not known). Evaluation in batches of
#: 128: 2.5× faster per image than 2,048 on this CPU (cache-sized activations)
RECIPE = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 2e-4,
          "batch_size": BATCH, "schedule": "cosine", "eval_batch_size": 128}


def _cell(conv: str, block: str) -> str:
    return f"{conv}-{block}"


def _configs(quick: bool, data: DatasetSpec) -> list[RunConfig]:
    cells = QUICK_CELLS if quick else [(c, b) for b in BLOCKS for c in CONVS]
    widths = QUICK_WIDTHS if quick else WIDTHS
    out = []
    for conv, block in cells:
        cfg = budget_config(_cell(conv, block), quick, EPOCHS, data, model="lowcost-resnet",
                            limit_train=QUICK_LIMIT if quick else LIMIT_TRAIN,
                            tags={"conv": conv, "block": block}, conv=conv, block=block,
                            widths=list(widths), steps=STEPS, h=1.0)
        if len(data.input_shape) == 3:  # colour images (CIFAR-10): the template's crop+flip
            cfg = cfg.replace(data={"augment": "crop-flip"})
        out.append(cfg.replace(train=RECIPE))
    return out


def _model(model_args: dict, dataset: str):
    """The model a row's ``model`` arguments build for ``dataset``, and its input shape."""
    spec, _ = resolve_dataset(dataset)
    args = dict(model_args)
    name = args.pop("name")
    shape = tuple(spec.input_shape) if len(spec.input_shape) == 3 else (1, *spec.input_shape)
    return make_model(name, math.prod(shape), spec.num_classes, input_shape=shape,
                      **args), shape


def _costs(model_args: dict, dataset: str, timed: bool = True) -> dict:
    """Parameters, multiply-adds per image and (``timed``) measured times of a model."""
    model, shape = _model(model_args, dataset)
    cost = measure_cost(model, shape, BATCH, repeats=3) if timed else {}
    return {"params": model.num_params(), "flops": model.flops(), **cost}


def _full_counterpart(model_args: dict) -> dict:
    """The fully coupled model of the same widths and block."""
    args = {k: v for k, v in model_args.items() if k != "conv_kwargs"}
    return {**args, "conv": "full"}


def _fmt_acc(a: dict | None) -> str:
    if a is None:
        return "—"
    if a["mean"] is None:
        return f"diverged ({a['diverged']}/{a['n_seeds']})"
    spread = f" ± {a['std']:.4f}" if a["n_seeds"] - a["diverged"] > 1 else ""
    extra = f", {a['diverged']} diverged" if a["diverged"] else ""
    return f"{a['mean']:.4f}{spread} (n={a['n_seeds']}{extra})"


def _report(rows: list[dict], out_dir: Path) -> str:
    agg = {a["name"]: a for a in aggregate(rows)}
    dataset = next((r["dataset"] for r in rows), None)
    if dataset is None:
        return "No finished runs yet."
    cells = {(a["tags"]["conv"], a["tags"]["block"]): a for a in agg.values()}
    costs = {key: _costs(a["model"], dataset) for key, a in cells.items()}
    lines = [
        "### Accuracy and cost per operator × block", "",
        "`params`: trainable parameters; `MACs/image`: multiply-adds of one forward "
        "(`LowCostResNet.flops`: the operators' convolutions, products and FFTs, the blocks' "
        "adjoints, diffusion and IMEX FFTs, batch norm, pooling, the head); `ms/step`: median "
        f"training step (forward, backward, SGD update) at batch {BATCH}, `ms/image`: median "
        f"inference per image at batch {BATCH} (`measure_cost`, "
        f"{next(iter(costs.values()))['threads']} thread(s), measured when this page was "
        "written, on a shared machine: ±20 %). `vs full`: the verdict against the fully coupled "
        "network with the same block — `better`/`worse` only when the means differ by more "
        "than the sum of the standard deviations over ≥ 3 seeds, else `not settled`.", "",
        "| conv | block | params | params / full | MACs/image | MACs / full | ms/step | "
        "ms/image | test accuracy | vs full |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for block in BLOCKS:
        base = cells.get(("full", block))
        for conv in CONVS:
            a = cells.get((conv, block))
            if a is None:
                continue
            c = costs[(conv, block)]
            if conv == "full":
                word, p_ratio, f_ratio = "baseline", "1", "1"
            else:
                word = "no baseline" if base is None else {
                    ">": "better", "<": "worse"}.get(verdict(a, base), "not settled")
                bc = costs.get(("full", block)) or _costs(_full_counterpart(a["model"]),
                                                          dataset, timed=False)
                p_ratio = f"{c['params'] / bc['params']:.3f}"
                f_ratio = f"{c['flops'] / bc['flops']:.3f}"
            if base is not None and conv != "full" and a["mean"] is not None \
                    and base["mean"] is not None:
                word += f" ({a['mean'] - base['mean']:+.4f})"
            lines.append(f"| {conv} | {block} | {c['params']:,} | {p_ratio} | {c['flops']:,} | "
                         f"{f_ratio} | {c['train_step_ms']:.1f} | "
                         f"{c['infer_ms_per_image']:.3f} | {_fmt_acc(a)} | {word} |")
    plots = []
    for key, label, fname in (("params", "trainable parameters (log)", "lowcost_cnn_params.png"),
                              ("flops", "multiply-adds per image (log)",
                               "lowcost_cnn_flops.png")):
        with figure(out_dir / fname, figsize=(7.5, 5)) as ax:
            markers = dict(zip(CONVS, "osD^v", strict=True))
            for b, block in enumerate(BLOCKS):
                for conv in CONVS:
                    a = cells.get((conv, block))
                    if a is None or a["mean"] is None:
                        continue
                    ax.errorbar(costs[(conv, block)][key], a["mean"], yerr=a["std"],
                                marker=markers[conv], color=f"C{b}", capsize=3, ls="none",
                                label=f"{conv}, {block}")
            ax.set_xscale("log")
            ax.set_xlabel(label)
            ax.set_ylabel("test accuracy (mean ± std over seeds)")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=6, ncol=2)
        plots.append(f"![accuracy vs {key}]({fname})")
    return "\n".join(lines) + "\n\nColour: block; marker: operator.\n\n" + "\n".join(plots)


PAPER = {
    "source": "Treister, Ruthotto, Sharoni, Zafrani, Haber, 'Low-cost parameterizations of deep "
              "convolutional neural networks' (2018; seed 003, abstract only); Ephrath et al., "
              "'LeanConvNets' (IEEE JSTSP 2020)",
    "dataset": "CIFAR-10 (the group's template; our default is Fashion-MNIST)",
    "metric": "none: no numbers could be obtained (the paper text is not available here); "
              "every value is None",
    "budget": "the group's Meganet template (inferred, shared/notes/papers.md §4): widths "
              "[32, 64, 112, 112], 3 steps per stage, h = 1, SGD momentum 0.9, batch 32, LR "
              "0.05, weight decay 2e-4, crop+flip augmentation, average pooling between stages",
    "rows": [
        {"label": "circulant channel coupling in a ResNet (architecture 1)",
         "key": "circulant-residual", "params": None, "value": None, "status": "not reported",
         "source": "abstract",
         "claim": "Our first architecture involves a convolution operator with a special "
                  "sparsity structure, and is applicable to a large class of CNNs."},
        {"label": "reaction-diffusion ResNet, explicit steps (architectures 2-3, inferred form)",
         "key": "circulant-explicit", "params": None, "value": None, "status": "not reported",
         "source": "abstract",
         "claim": "we present an architecture that can be seen as a discretization of a "
                  "diffusion reaction PDE, and use it with three different convolution "
                  "operators"},
        {"label": "reaction-diffusion ResNet, implicit-explicit steps (inferred)",
         "key": "circulant-imex", "params": None, "value": None, "status": "not reported",
         "source": "shared/notes/papers.md §4 (inferred: 'explicit or implicit-explicit time "
                   "steps')"},
        {"label": "LeanConvNets: depthwise 5-point stencil + 1×1, summed",
         "key": "lean-residual", "params": None, "value": None, "status": "not reported",
         "source": "Ephrath et al. 2020 (text not available here)"},
    ],
    "text_claims": [
        {"source": "abstract", "claim": "We propose new architectures that use a sparser "
         "coupling between the channels and thereby reduce both the number of trainable "
         "weights and the computational cost of the CNN."},
        {"source": "abstract", "claim": "We outline in our experiments that the proposed "
         "architectures, although considerably reducing the number of trainable weights, yield "
         "comparable accuracy to existing CNNs that are fully coupled in the channel "
         "dimension."},
    ],
}

register_experiment(Experiment(
    name="lowcost-cnn", title="Low-cost CNNs: accuracy vs parameters and FLOPs per operator and "
                              "block",
    description="`lowcost-resnet` (full 3×3 opening conv, stages of residual blocks, 1×1 conv + "
                "2×2 average pooling between stages, global average pooling, dense head) with "
                "each conv operator (full = fully coupled baseline, circulant, dc, lean, "
                "separable) in each block (explicit and IMEX reaction-diffusion, symmetric "
                "Kᵀσ(NK), plain residual), each compared with the full operator in the same "
                "block. Fashion-MNIST by default (the data set `auto` resolves to); CIFAR-10 "
                "with `--dataset cifar10`.",
    configs=_configs, report=_report, paper=PAPER, seeds=(0, 1, 2),
    budget_note=f"sized for about an hour on 2 shared CPU cores. Against the group's template "
                f"(widths [32, 64, 112, 112], 3 steps per stage, h = 1, SGD 0.9 / LR 0.05 / "
                f"weight decay 2e-4, batch 32, crop+flip, CIFAR-10): widths "
                f"{list(WIDTHS)}, {STEPS} step per stage, {EPOCHS} epochs on a seeded subset "
                f"of {LIMIT_TRAIN:,} training images (the full test set), a cosine schedule; h = "
                f"1, SGD momentum 0.9, LR 0.05, batch {BATCH} and weight decay 2e-4 kept; "
                f"crop+flip augmentation on CIFAR-10 (`data.augment`), none on Fashion-MNIST; "
                f"20 cells × 3 seeds. Quick: widths "
                f"{list(QUICK_WIDTHS)}, 1 epoch on {QUICK_LIMIT:,} images, "
                f"{len(QUICK_CELLS)} cells (every operator and block once, two with their "
                f"full baseline), one seed"))
