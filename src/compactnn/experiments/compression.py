"""Table 3 of Araujo et al. (2020): DCNN against other compression methods (HashNet, Dark
Knowledge distillation) and a CNN, on MNIST in the paper."""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig
from ..data import DatasetSpec
from .paper_numbers import PAPER_TABLES
from .plots import accuracy_vs_params
from .runner import Experiment, aggregate, budget_config, register_experiment, verdict_table

#: (temperature, α) of each dense student's distillation, chosen on a validation split with the
#: test set unused (scripts/compression_pilot.py → results/compression/pilot.md)
DISTILL = {59: (2.0, 0.1), 98: (2.0, 0.1)}


def _configs(quick: bool, data: DatasetSpec) -> list[RunConfig]:
    def cfg(name, model, **kw):
        return budget_config(name, quick, 4, data, model=model, **kw)

    out = [cfg("lenet", "lenet")]
    # 8 / 10 DC layers at n = 1024 (784 inputs zero-padded): 25,620 / 31,764 weights
    for depth in (8, 10):
        out.append(cfg(f"dcnn-{depth}x1024", "dcnn", width=1024, depth=depth,
                       activation="leaky_relu", negative_slope=0.5))
    # HashNet: 784-1000-1000-1000-10 with 1/64 and 1/40 of the weights
    for frac, label in ((1 / 64, "64"), (1 / 40, "40")):
        out.append(cfg(f"hashnet-1/{label}", "mlp", layer="hashed", width=1000, depth=3,
                       activation="relu", layer_kwargs={"compression": frac, "seed": 0}))
    # Dark Knowledge: a dense student with the HashNet budgets, distilled from the LeNet run
    for width, (temperature, alpha) in DISTILL.items():
        out.append(cfg(f"distilled-dense-{width}", "dense-mlp", width=width, depth=1,
                       task={"teacher": "run:lenet", "temperature": temperature,
                             "alpha": alpha}))
        out.append(cfg(f"dense-{width}", "dense-mlp", width=width, depth=1))
    return out


#: (ours, theirs) pairs the verdict table compares: each DCNN against every other compressed
#: model (all larger), and each distilled student against the same student trained plainly
PAIRS = ([(d, o) for d in ("dcnn-8x1024", "dcnn-10x1024")
          for o in ("hashnet-1/64", "hashnet-1/40", "distilled-dense-59", "distilled-dense-98",
                    "dense-59", "dense-98")]
         + [(f"distilled-dense-{w}", f"dense-{w}") for w in DISTILL])


def _report(rows: list[dict], out_dir: Path) -> str:
    agg = {a["name"]: a for a in aggregate(rows)}
    plot = accuracy_vs_params(list(agg.values()), out_dir / "compression.png",
                              "compression baselines")
    return "### Verdicts\n\n" + verdict_table(agg, PAIRS) + "\n\n" + plot


register_experiment(Experiment(
    name="compression", title="Table 3: DCNN vs HashNet vs distillation vs a CNN",
    description="A LeNet-style CNN (also the distillation teacher), DCNNs of 8/10 DC layers "
                "at n = 1024 (the inferred 25,620 / 31,764-weight models), HashNet "
                "784-1000-1000-1000-10 at 1/64 and 1/40 of the weights, and dense students "
                "with HashNet's budgets trained with and without distillation (Dark "
                "Knowledge) from the LeNet run of the same seed.",
    configs=_configs, report=_report, paper=PAPER_TABLES["compression"], seeds=(0, 1, 2),
    budget_note="full: 4 epochs (paper: not stated), Adam 1e-3 cosine, batch 128, 3 seeds; "
                "distillation temperature and α per student chosen on a validation split "
                "(results/compression/pilot.md: "
                + ", ".join(f"width {w}: T = {t:g}, α = {a:g}" for w, (t, a) in DISTILL.items())
                + "); quick: 1 epoch on 2,000 images"))
