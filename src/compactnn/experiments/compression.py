"""Table 3 of Araujo et al. (2020): DCNN against other compression methods (HashNet, Dark
Knowledge distillation) and a CNN, on MNIST in the paper."""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig
from ..data import DatasetSpec
from .paper_numbers import PAPER_TABLES
from .plots import accuracy_vs_params
from .runner import Experiment, aggregate, budget_config, register_experiment


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
    for width in (59, 98):
        out.append(cfg(f"distilled-dense-{width}", "dense-mlp", width=width, depth=1,
                       task={"teacher": "run:lenet", "temperature": 4.0, "alpha": 0.9}))
        out.append(cfg(f"dense-{width}", "dense-mlp", width=width, depth=1))
    return out


def _report(rows: list[dict], out_dir: Path) -> str:
    return accuracy_vs_params(aggregate(rows), out_dir / "compression.png",
                              "compression baselines")


register_experiment(Experiment(
    name="compression", title="Table 3: DCNN vs HashNet vs distillation vs a CNN",
    description="A LeNet-style CNN (also the distillation teacher), DCNNs of 8/10 DC layers "
                "at n = 1024 (the inferred 25,620 / 31,764-weight models), HashNet "
                "784-1000-1000-1000-10 at 1/64 and 1/40 of the weights, and dense students "
                "with HashNet's budgets trained with and without distillation (Dark "
                "Knowledge, T = 4, α = 0.9) from the LeNet run of the same seed.",
    configs=_configs, report=_report, paper=PAPER_TABLES["compression"],
    budget_note="full: 4 epochs (paper: not stated), Adam 1e-3 cosine, batch 128; "
                "quick: 1 epoch on 2,000 images"))
