"""The learning-rate pilot behind ``compactnn reproduce prodsumnet``: every net of the 3.5k
budget (and the reference CNN) trained at several Adam rates on a seeded 25,000-image subset
of the training set, of which 5,000 are held out as validation; the rate is chosen on the
validation accuracy alone — the test set plays no part (its metric is neither kept nor shown).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/prodsumnet_pilot.py [--quick]

writes ``results/prodsumnet/pilot.json`` and ``pilot.md`` (``--quick``: one epoch on 2,000
images, two rates, printed only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from compactnn.data import resolve_dataset
from compactnn.experiments import prodsumnet as psn
from compactnn.runs import run

LIMIT, VAL = 25_000, 0.2
RATES = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
REF_RATES = (1e-3, 1e-2)
#: the 3.5k-budget presets (their rate serves their family's larger presets too), the
#: reference CNN, and every matched baseline at every budget (a baseline's depth or rank
#: changes with the budget, so each gets its own rate)
NETS = ("psn-3.5k", "tdn-3.5k", "reference-cnn",
        *(f"{fam}-{tier}" for tier in psn.TIERS for fam in psn.BASELINES))
OUT = Path(__file__).resolve().parent.parent / "results" / "prodsumnet"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--fresh", action="store_true",
                    help="measure everything again (default: keep the rows of pilot.json)")
    args = ap.parse_args(argv)
    spec, _ = resolve_dataset("auto")
    configs = {c.name: c for c in psn._configs(False, spec) if c.name in NETS}
    kept = {}
    if not (args.quick or args.fresh) and (OUT / "pilot.json").is_file():
        old = json.loads((OUT / "pilot.json").read_text())
        if (old["limit_train"], old["val_fraction"], old["dataset"]) == (LIMIT, VAL, spec.name):
            kept = {(r["net"], r["lr"]): r for r in old["rows"]}
    rows = []
    for name in NETS:
        rates = REF_RATES if name == "reference-cnn" else RATES
        for lr in rates[1:3] if args.quick else rates:
            if (name, lr) in kept:
                rows.append(kept[(name, lr)])
                continue
            cfg = configs[name]
            cfg = cfg.replace(seed=0, data={"limit_train": 2_000 if args.quick else LIMIT,
                                            "val_fraction": VAL},
                              train={"lr": lr, **({"epochs": 1} if args.quick else {})})
            t0 = time.perf_counter()
            h = run(cfg, progress=False, log=None)["history"]
            row = {"net": name, "lr": lr, "epochs": cfg.train.epochs,
                   "params": h["num_params"], "val_acc": h["final"]["val_acc"],
                   "seconds": round(time.perf_counter() - t0, 1)}
            rows.append(row)
            print(f"{name:18s} lr {lr:g}: val acc {row['val_acc']:.4f} "
                  f"({row['seconds']:.0f} s)", flush=True)
    best = {}
    for r in rows:
        if r["net"] not in best or r["val_acc"] > best[r["net"]]["val_acc"]:
            best[r["net"]] = r
    lines = ["# ProdSumNet learning-rate pilot (validation split; the test set unused)", "",
             f"Dataset {spec.name}; seed 0; a seeded {LIMIT:,}-image subset of the training "
             f"set, {VAL:.0%} of it held out as validation; Adam with a cosine schedule, batch "
             f"128; the experiment's epochs per net; the experiment uses each net's best rate. "
             f"Command: `OMP_NUM_THREADS=1 "
             f".venv/bin/python scripts/prodsumnet_pilot.py`.", "",
             "| net | params | " + " | ".join(f"lr {lr:g}" for lr in RATES) + " | best |",
             "|---|---:|" + "---:|" * len(RATES) + "---|"]
    for name in NETS:
        got = {r["lr"]: r for r in rows if r["net"] == name}
        cells = [f"{got[lr]['val_acc']:.4f}" if lr in got else "—" for lr in RATES]
        lines.append(f"| {name} | {best[name]['params']:,} | " + " | ".join(cells)
                     + f" | {best[name]['lr']:g} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        out = OUT
        out.mkdir(parents=True, exist_ok=True)
        (out / "pilot.json").write_text(json.dumps({"limit_train": LIMIT, "val_fraction": VAL,
                                                    "dataset": spec.name, "rows": rows},
                                                   indent=2) + "\n")
        (out / "pilot.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
