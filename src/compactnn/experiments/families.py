"""Every registered layer family side by side: same data, same architecture, same training."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..data import load_dataset
from ..layers.registry import available_layers, get_layer_class
from ..train import TrainConfig, write_json
from .runs import train_run

__all__ = ["run_families"]


def run_families(
    *,
    families: list[str] | None = None,
    dataset: str = "auto",
    data_dir: str | None = None,
    width: int | None = None,
    depth: int = 1,
    train: TrainConfig | None = None,
    quick: bool = False,
    out_dir: str | Path = "results/families",
    runs_dir: str | Path = "runs",
    progress: bool = True,
    log=print,
) -> list[dict]:
    """Train ``StructuredMLP(layer=family, width, depth, activation="relu", classifier="dense")``
    (``width`` defaults to the input size)
    — with the default ``depth=1`` the SHL protocol of the LDR comparisons — for every family
    and write ``<out_dir>/families.{md,json}`` (parameters of the hidden
    layers and of the whole model, test accuracy, time per epoch)."""
    train = train or TrainConfig(epochs=5, batch_size=128, lr=1e-3, schedule="cosine")
    limit = None
    if quick:
        train, limit = replace(train, epochs=1), 2000
    families = families or available_layers()
    data = load_dataset(dataset, data_dir=data_dir, seed=train.seed, limit_train=limit)
    for note in data.notes:
        log(f"note: {note}")
    width = data.in_features if width is None else width
    rows = []
    for fam in families:
        # each family's declared budget (roughly 1–25K weights per 784×784 layer)
        kw = get_layer_class(fam).capabilities()["budget_kwargs"]
        model_kwargs = {"layer": fam, "width": width, "depth": depth, "activation": "relu",
                        "classifier": "dense", "layer_kwargs": kw}
        res = train_run(model="mlp", model_kwargs=model_kwargs, train=train, data=data,
                        runs_dir=runs_dir, name=f"family-{fam}", progress=progress, log=log)
        cls = get_layer_class(fam)
        hidden = cls.num_params(data.in_features, width, **kw) + (depth - 1) * cls.num_params(
            width, width, **kw)
        h = res["history"]
        rows.append({"family": fam, "class": cls.__name__, "layer_kwargs": kw,
                     "hidden_params": hidden, "total_params": res["num_params"],
                     "test_acc": h["final"]["test_acc"], "train_acc": h["final"]["train_acc"],
                     "time_per_epoch_s": h["time_per_epoch_s"], "run_dir": res["run_dir"]})
    rows.sort(key=lambda r: -r["test_acc"])
    header = (f"{data.name}: StructuredMLP width {width}, {depth} structured hidden layers + ReLU, "
              f"dense classifier; {train.epochs} epochs, batch {train.batch_size}, "
              f"{train.optimizer} lr {train.lr:g} ({train.schedule}), seed {train.seed}"
              + (" [quick]" if quick else ""))
    lines = [header, "", "| family | structure args | hidden-layer params | total params | "
             "test acc | s/epoch |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        args = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in r["layer_kwargs"].items()) or "—"
        lines.append(f"| {r['family']} | {args} | {r['hidden_params']:,} | "
                     f"{r['total_params']:,} | {r['test_acc']:.4f} | "
                     f"{r['time_per_epoch_s']:.1f} |")
    table = "\n".join(lines)
    log("\n" + table)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "families.json", {"dataset": data.name, "quick": quick,
                                       "train": train.to_dict(), "width": width,
                                       "depth": depth, "rows": rows})
    (out / "families.md").write_text(table + "\n")
    return rows
