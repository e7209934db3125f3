"""The main job: a DCNN next to a dense MLP on the same data, same training, one table."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from ..data import load_dataset
from ..train import TrainConfig, write_json
from .runs import train_run

__all__ = ["COMPARE_MODELS", "format_table", "run_compare"]

#: (label, model, model kwargs) of the main comparison.
COMPARE_MODELS = (
    ("Dense MLP 2×1024", "dense-mlp", {"width": 1024, "depth": 2, "activation": "relu"}),
    ("DCNN 3×DC-4096", "dcnn", {"width": 4096, "depth": 3, "activation": "relu"}),
)


def format_table(rows: list[dict]) -> str:
    """Markdown table of the comparison (first row is the reference)."""
    ref = rows[0]
    lines = ["| model | parameters | % of dense | test accuracy | Δ vs dense | time/epoch (s) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['num_params']:,} "
            f"| {100 * r['num_params'] / ref['num_params']:.2f}% "
            f"| {r['test_acc']:.4f} | {100 * (r['test_acc'] - ref['test_acc']):+.2f} pts "
            f"| {r['time_per_epoch_s']:.1f} |")
    return "\n".join(lines)


def run_compare(
    *,
    dataset: str = "auto",
    data_dir: str | None = None,
    train: TrainConfig | None = None,
    quick: bool = False,
    runs_dir: str | Path = "runs",
    progress: bool = True,
    log=print,
) -> dict:
    """Train every model of :data:`COMPARE_MODELS` and print/write the side-by-side table.

    Default budget: 12 epochs of Adam (lr 1e-3, cosine) at batch 128 — under 10 minutes for
    both models on 2 CPU cores. ``quick``: 2 epochs on 3,000 training images (CI smoke run).
    """
    train = train or TrainConfig(epochs=12, batch_size=128, lr=1e-3, schedule="cosine")
    limit = None
    if quick:
        train, limit = replace(train, epochs=2), 3000
    data = load_dataset(dataset, data_dir=data_dir, seed=train.seed, limit_train=limit)
    for note in data.notes:
        log(f"note: {note}")
    log(f"data: {data.summary()}")
    out_dir = Path(runs_dir) / f"{time.strftime('%Y%m%d-%H%M%S')}-compare"
    rows = []
    for label, model, kwargs in COMPARE_MODELS:
        res = train_run(model=model, model_kwargs=kwargs, train=train, data=data,
                        runs_dir=out_dir, name=model, progress=progress, log=log)
        h = res["history"]
        rows.append({"label": label, "model": model, "model_kwargs": kwargs,
                     "num_params": res["num_params"], "test_acc": h["final"]["test_acc"],
                     "train_acc": h["final"]["train_acc"],
                     "time_per_epoch_s": h["time_per_epoch_s"], "run_dir": res["run_dir"]})
    table = format_table(rows)
    header = (f"{data.name} ({data.source}), {train.epochs} epochs, batch {train.batch_size}, "
              f"{train.optimizer} lr {train.lr:g} ({train.schedule}), seed {train.seed}"
              + (" [quick]" if quick else ""))
    log("\n" + header + "\n\n" + table)
    result = {"dataset": data.name, "notes": data.notes, "quick": quick,
              "train": train.to_dict(), "rows": rows}
    write_json(out_dir / "results.json", result)
    (out_dir / "results.md").write_text(header + "\n\n" + table + "\n")
    log(f"\nwrote {out_dir / 'results.md'}")
    return result
