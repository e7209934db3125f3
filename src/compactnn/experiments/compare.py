"""The main job: a DCNN next to a dense MLP on the same data, same training, one table."""

from __future__ import annotations

import time
from pathlib import Path

from ..config import RunConfig
from ..runs import load_data, run
from ..train import write_json
from ..train.distributed import DistInfo, broadcast_object

__all__ = ["COMPARE_MODELS", "base_config", "format_table", "run_compare"]

#: (label, model, model args) of the main comparison.
COMPARE_MODELS = (
    ("Dense MLP 2×1024", "dense-mlp", {"width": 1024, "depth": 2, "activation": "relu"}),
    ("DCNN 3×DC-4096", "dcnn", {"width": 4096, "depth": 3, "activation": "relu"}),
)


def base_config(quick: bool = False) -> RunConfig:
    """Data and training shared by the compared models: 12 epochs of Adam (lr 1e-3, cosine)
    at batch 128 — a few minutes on 2 CPU cores; quick: 2 epochs on 3,000 training images."""
    return RunConfig.from_dict({
        "name": "compare", "data": {"limit_train": 3000 if quick else None},
        "train": {"epochs": 2 if quick else 12, "batch_size": 128, "lr": 1e-3,
                  "schedule": "cosine"}})


def format_table(rows: list[dict]) -> str:
    """Markdown table of the comparison (first row is the reference) on the rows' ``metric``
    (``test_<metric>``; default ``acc``, whose difference is shown in percentage points)."""
    ref = rows[0]
    metric = ref.get("metric", "acc")
    key = f"test_{metric}"
    label = "test accuracy" if metric == "acc" else f"test {metric}"
    lines = [f"| model | parameters | % of dense | {label} | Δ vs dense | time/epoch (s) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        diff = r[key] - ref[key]
        delta = f"{100 * diff:+.2f} pts" if metric == "acc" else f"{diff:+.4g}"
        lines.append(
            f"| {r['label']} | {r['num_params']:,} "
            f"| {100 * r['num_params'] / ref['num_params']:.2f}% "
            f"| {r[key]:.4f} | {delta} "
            f"| {r['time_per_epoch_s']:.1f} |")
    return "\n".join(lines)


def _check_model_untouched(base: RunConfig) -> None:
    fixed = base_config().model.to_dict()
    given = base.model.to_dict()
    if given != fixed:
        changed = ", ".join(f"model.{k}={given.get(k)!r}" for k in sorted(set(given) | set(fixed))
                            if given.get(k) != fixed.get(k))
        models = ", ".join(label for label, _, _ in COMPARE_MODELS)
        raise ValueError(f"compare trains fixed models ({models}); model settings cannot be "
                         f"overridden (got {changed}) — use compactnn train")


def run_compare(base: RunConfig | None = None, *, quick: bool = False,
                runs_dir: str | Path = "runs", progress: bool = True, log=print,
                dist: DistInfo | None = None) -> dict:
    """Train every model of :data:`COMPARE_MODELS` with ``base``'s data, training and seed;
    print and write the side-by-side table to ``<runs_dir>/<timestamp>-compare/``. The table
    shows the task's primary metric (accuracy for classification). ``base``'s model section
    must be :func:`base_config`'s (the models are fixed): anything else is a ValueError.
    ``dist``: under torchrun every rank calls this; each run is data-parallel
    (:func:`~compactnn.runs.run`) and rank 0 logs and writes."""
    base = base if base is not None else base_config(quick)
    info = dist if dist is not None else DistInfo(device=base.train.device)
    if not info.is_main:
        log, progress = (lambda *_: None), False
    _check_model_untouched(base)
    data = load_data(base)
    for note in data.notes:
        log(f"note: {note}")
    log(f"data: {data.summary()}")
    out_dir = Path(runs_dir) / f"{broadcast_object(time.strftime('%Y%m%d-%H%M%S'))}-compare"
    rows = []
    for label, model, args in COMPARE_MODELS:
        cfg = base.replace(name=model, model={"name": model, **args})
        stamp = broadcast_object(time.strftime('%Y%m%d-%H%M%S'))  # rank 0's names everywhere
        res = run(cfg, run_dir=out_dir / f"{stamp}-{model}", data=data, progress=progress,
                  log=log, dist=info)
        h = res["history"]
        primary = h["primary"]
        rows.append({"label": label, "model": model, "model_args": args,
                     "num_params": res["num_params"], "metric": primary,
                     f"test_{primary}": h["final"][f"test_{primary}"],
                     f"train_{primary}": h["final"][f"train_{primary}"],
                     "time_per_epoch_s": h["time_per_epoch_s"], "run_dir": res["run_dir"],
                     "config": res["config"].to_dict()})
    table = format_table(rows)
    t = base.train
    header = (f"{data.name} ({data.source}), {t.epochs} epochs, batch {t.batch_size}, "
              f"{t.optimizer} lr {t.lr:g} ({t.schedule}), seed {base.seed}"
              + (" [quick]" if quick else ""))
    log("\n" + header + "\n\n" + table)
    result = {"dataset": data.name, "notes": data.notes, "quick": quick, "metric": primary,
              "config": base.to_dict(), "rows": rows}
    if not info.is_main:
        return result
    write_json(out_dir / "results.json", result)
    (out_dir / "results.md").write_text(header + "\n\n" + table + "\n")
    log(f"\nwrote {out_dir / 'results.md'}")
    return result
