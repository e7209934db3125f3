"""Every registered layer family side by side: same data, same architecture, same training."""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig
from ..layers.registry import available_layers, get_layer_class
from ..runs import load_data, new_run_dir, run
from ..train import write_json

__all__ = ["base_config", "run_families"]


def base_config(quick: bool = False) -> RunConfig:
    """``StructuredMLP(layer=<family>, width=input size, depth=1, relu, dense classifier)`` —
    the SHL protocol of the LDR comparisons — trained 5 epochs (Adam 1e-3, cosine, batch 128);
    quick: 1 epoch on 2,000 training images."""
    return RunConfig.from_dict({
        "name": "families",
        "model": {"name": "mlp", "depth": 1, "activation": "relu", "classifier": "dense"},
        "data": {"limit_train": 2000 if quick else None},
        "train": {"epochs": 1 if quick else 5, "batch_size": 128, "lr": 1e-3,
                  "schedule": "cosine"}})


def run_families(
    base: RunConfig | None = None,
    *,
    families: list[str] | None = None,
    quick: bool = False,
    out_dir: str | Path = "results/families",
    runs_dir: str | Path = "runs",
    progress: bool = True,
    log=print,
) -> list[dict]:
    """Train ``base`` with ``model.layer`` set to each family (with the family's declared
    budget kwargs) and write ``<out_dir>/families.{md,json}``: parameters of the hidden layers
    and of the whole model, test accuracy, time per epoch."""
    base = base if base is not None else base_config(quick)
    families = families or available_layers()
    data = load_data(base)
    for note in data.notes:
        log(f"note: {note}")
    width = base.model.args.get("width") or data.in_features
    depth = base.model.args.get("depth", 1)
    rows = []
    for fam in families:
        cls = get_layer_class(fam)
        kw = cls.capabilities()["budget_kwargs"]  # roughly 1–25K weights per 784×784 layer
        cfg = base.replace(name=f"family-{fam}",
                           model={"layer": fam, "width": width, "layer_kwargs": kw})
        res = run(cfg, run_dir=new_run_dir(runs_dir, cfg.name), data=data, progress=progress,
                  log=log)
        hidden = cls.num_params(data.in_features, width, **kw) + (depth - 1) * cls.num_params(
            width, width, **kw)
        h = res["history"]
        rows.append({"family": fam, "class": cls.__name__, "layer_kwargs": kw,
                     "hidden_params": hidden, "total_params": res["num_params"],
                     "test_acc": h["final"]["test_acc"], "train_acc": h["final"]["train_acc"],
                     "time_per_epoch_s": h["time_per_epoch_s"], "run_dir": res["run_dir"]})
    rows.sort(key=lambda r: -r["test_acc"])
    t = base.train
    header = (f"{data.name}: StructuredMLP width {width}, {depth} structured hidden layers + ReLU, "
              f"dense classifier; {t.epochs} epochs, batch {t.batch_size}, "
              f"{t.optimizer} lr {t.lr:g} ({t.schedule}), seed {base.seed}"
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
                                       "config": base.to_dict(), "width": width,
                                       "depth": depth, "rows": rows})
    (out / "families.md").write_text(table + "\n")
    return rows
