"""The distillation pilot behind ``compactnn reproduce compression``: the LeNet teacher and the
dense students of HashNet's budgets (hidden widths 59 and 98) trained on a seeded
25,000-image subset of the training set, 5,000 of it held out as validation; each student
plain and distilled at every (temperature, α) of the grid; the experiment uses each width's
best setting on the validation accuracy — the test set plays no part (its metric is neither
kept nor shown).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/compression_pilot.py [--quick]

writes ``results/compression/pilot.json`` and ``pilot.md`` (``--quick``: one epoch on 2,000
images, two settings, printed only).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from compactnn.data import resolve_dataset
from compactnn.experiments import compression
from compactnn.runs import run

LIMIT, VAL = 25_000, 0.2
TEMPERATURES = (2.0, 4.0, 8.0)
ALPHAS = (0.1, 0.5, 0.9)
WIDTHS = (59, 98)
OUT = Path(__file__).resolve().parent.parent / "results" / "compression"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    spec, _ = resolve_dataset("auto")
    configs = {c.name: c for c in compression._configs(False, spec)}
    data = {"limit_train": 2_000 if args.quick else LIMIT, "val_fraction": VAL}
    train = {"epochs": 1} if args.quick else {}
    grid = [(t, a) for t in TEMPERATURES for a in ALPHAS]
    grid = grid[1:3] if args.quick else grid
    rows = []

    def measure(cfg, label, **kw):
        t0 = time.perf_counter()
        h = run(cfg.replace(seed=0, data=data, train=train), progress=False, log=None,
                **kw)["history"]
        row = {"net": label, "params": h["num_params"], "val_acc": h["final"]["val_acc"],
               "seconds": round(time.perf_counter() - t0, 1)}
        print(f"{label:34s} val acc {row['val_acc']:.4f} ({row['seconds']:.0f} s)", flush=True)
        rows.append(row)
        return row

    with tempfile.TemporaryDirectory() as root:
        measure(configs["lenet"], "lenet (teacher)", run_dir=Path(root) / "lenet" / "seed0")
        for width in WIDTHS:
            measure(configs[f"dense-{width}"], f"dense-{width}")
            for t, a in grid:
                cfg = configs[f"distilled-dense-{width}"].replace(
                    task={"teacher": "run:lenet", "temperature": t, "alpha": a})
                r = measure(cfg, f"distilled-dense-{width} T={t:g} α={a:g}", teacher_root=root)
                r.update(width=width, temperature=t, alpha=a)
    best = {}
    for r in rows:
        if "width" in r and (r["width"] not in best or r["val_acc"] > best[r["width"]]["val_acc"]):
            best[r["width"]] = r
    plain = {r["net"]: r for r in rows}
    lines = ["# Distillation pilot (validation split; the test set unused)", "",
             f"Dataset {spec.name}; seed 0; a seeded {data['limit_train']:,}-image subset of "
             f"the training set, {VAL:.0%} of it held out as validation; the experiment's "
             f"optimisation (Adam 1e-3, cosine, batch 128, {1 if args.quick else 4} epochs); "
             f"the teacher is the experiment's LeNet trained on the same split (validation "
             f"accuracy {plain['lenet (teacher)']['val_acc']:.4f}). The "
             f"experiment distils each student with its width's best (T, α). Command: "
             f"`OMP_NUM_THREADS=1 .venv/bin/python scripts/compression_pilot.py`.", "",
             "| student | params | plain | " + " | ".join(f"T={t:g} α={a:g}" for t, a in grid)
             + " | best |", "|---|---:|---:|" + "---:|" * len(grid) + "---|"]
    for width in WIDTHS:
        got = {(r["temperature"], r["alpha"]): r["val_acc"] for r in rows
               if r.get("width") == width}
        b = best[width]
        lines.append(f"| dense-{width} | {b['params']:,} | "
                     f"{plain[f'dense-{width}']['val_acc']:.4f} | "
                     + " | ".join(f"{got[k]:.4f}" for k in grid)
                     + f" | T={b['temperature']:g} α={b['alpha']:g} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "pilot.json").write_text(json.dumps(
            {"limit_train": LIMIT, "val_fraction": VAL, "dataset": spec.name, "rows": rows},
            indent=2) + "\n")
        (OUT / "pilot.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
