"""Every registered layer family side by side: same data, same architecture, same training."""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig
from ..layers.registry import available_layers, get_layer_class
from ..registry import accepted_kwargs, get
from ..runs import load_data, new_run_dir, run
from ..train import write_json
from ..train.distributed import DistInfo, broadcast_object

__all__ = ["DEFAULT_OUT_DIR", "base_config", "run_families"]

#: where a full (not quick) families table is written unless ``out_dir`` says otherwise
DEFAULT_OUT_DIR = "results/families"


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


def _out_dir(out_dir: str | Path | None, quick: bool, runs_dir: str | Path) -> Path:
    """A quick run is a smoke test: unless sent elsewhere, it never overwrites the committed
    ``results/families`` but goes to ``<runs_dir>/quick-results/families``."""
    if out_dir is None or (quick and Path(out_dir) == Path(DEFAULT_OUT_DIR)):
        return Path(runs_dir) / "quick-results" / "families" if quick else Path(DEFAULT_OUT_DIR)
    return Path(out_dir)


def _check_layer_kwargs(user_kw: dict, families: list[str]) -> None:
    for fam in families:
        ok = accepted_kwargs(get_layer_class(fam))
        bad = [] if ok is None else sorted(set(user_kw) - ok)
        if bad:
            takes = ", ".join(sorted(ok - {"in_features", "out_features", "device", "dtype"}))
            raise ValueError(f"model.layer_kwargs {', '.join(map(repr, bad))} is not an argument "
                             f"of family {fam!r} (it takes: {takes}); choose --families that "
                             "take it")


def _model_arg(res: dict, key: str):
    """A model argument as the run used it (the resolved config, else the built model's)."""
    args = res["config"].model.args
    if key in args:
        return args[key]
    return getattr(res["model"], "config", {}).get(key)


def run_families(
    base: RunConfig | None = None,
    *,
    families: list[str] | None = None,
    quick: bool = False,
    out_dir: str | Path | None = None,
    runs_dir: str | Path = "runs",
    progress: bool = True,
    log=print,
    dist: DistInfo | None = None,
) -> list[dict]:
    """Train ``base`` with ``model.layer`` set to each family and write
    ``<out_dir>/families.{md,json}``: parameters of the hidden layers and of the whole model,
    the task's primary test metric (accuracy for classification), time per epoch, and each
    run's resolved config.

    Each family gets its declared budget kwargs with ``base.model.layer_kwargs`` on top (a key
    some selected family does not take is a ValueError). ``out_dir``: default
    ``results/families``; with ``quick``, the default (``None`` or ``"results/families"``)
    becomes ``<runs_dir>/quick-results/families``, so a smoke test never overwrites a result.
    ``dist``: under torchrun every rank calls this; each run is data-parallel and rank 0 logs
    and writes.
    """
    base = base if base is not None else base_config(quick)
    info = dist if dist is not None else DistInfo(device=base.train.device)
    if not info.is_main:
        log, progress = (lambda *_: None), False
    families = families or available_layers()
    user_kw = dict(base.model.args.get("layer_kwargs") or {})
    _check_layer_kwargs(user_kw, families)
    out = _out_dir(out_dir, quick, runs_dir)
    data = load_data(base)
    for note in data.notes:
        log(f"note: {note}")
    width = base.model.args.get("width")
    width = data.in_features if width is None else width
    depth = base.model.args.get("depth", 1)
    rows, primary, higher = [], None, True
    for fam in families:
        cls = get_layer_class(fam)
        # the family's budget (roughly 1–25K weights per 784×784 layer), then the user's kwargs
        kw = {**cls.capabilities()["budget_kwargs"], **user_kw}
        cfg = base.replace(name=f"family-{fam}",
                           model={"layer": fam, "width": width, "layer_kwargs": kw})
        run_dir = broadcast_object(new_run_dir(runs_dir, cfg.name))  # rank 0's everywhere
        res = run(cfg, run_dir=run_dir, data=data, progress=progress, log=log, dist=info)
        hidden = cls.num_params(data.in_features, width, **kw) + (depth - 1) * cls.num_params(
            width, width, **kw)
        h = res["history"]
        primary = h["primary"]
        higher = get("task", res["config"].task.name).higher_is_better
        rows.append({"family": fam, "class": cls.__name__, "layer_kwargs": kw,
                     "hidden_params": hidden, "total_params": res["num_params"],
                     "metric": primary, f"test_{primary}": h["final"][f"test_{primary}"],
                     f"train_{primary}": h["final"][f"train_{primary}"],
                     "time_per_epoch_s": h["time_per_epoch_s"], "run_dir": res["run_dir"],
                     "activation": _model_arg(res, "activation"),
                     "classifier": _model_arg(res, "classifier"),
                     "config": res["config"].to_dict()})
    key = f"test_{primary}"
    rows.sort(key=lambda r: -r[key] if higher else r[key])
    t = base.train
    activations = sorted({str(r["activation"]) for r in rows})
    classifiers = sorted({str(r["classifier"]) for r in rows})
    header = (f"{data.name}: StructuredMLP width {width}, {depth} structured hidden layers + "
              f"{'/'.join(activations)}, {'/'.join(classifiers)} classifier; {t.epochs} epochs, "
              f"batch {t.batch_size}, {t.optimizer} lr {t.lr:g} ({t.schedule}), seed {base.seed}"
              + (" [quick]" if quick else ""))
    lines = [header, "", "| family | structure args | hidden-layer params | total params | "
             f"test {primary} | s/epoch |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        args = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in r["layer_kwargs"].items()) or "—"
        lines.append(f"| {r['family']} | {args} | {r['hidden_params']:,} | "
                     f"{r['total_params']:,} | {r[key]:.4f} | "
                     f"{r['time_per_epoch_s']:.1f} |")
    table = "\n".join(lines)
    log("\n" + table)
    if not info.is_main:
        return rows
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "families.json", {"dataset": data.name, "quick": quick, "metric": primary,
                                       "config": base.to_dict(), "width": width,
                                       "depth": depth, "rows": rows})
    (out / "families.md").write_text(table + "\n")
    log(f"\nwrote {out / 'families.md'}")
    return rows
