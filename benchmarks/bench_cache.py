"""What a cached kernel spectrum buys at inference, measured side by side in one process.

The FFT-based layers (dc, circulant_projection, circulant, toeplitz, dtnn) compute per forward
the ``rfft`` of their parameter vector (one parameter-sized FFT) besides the batch's FFTs. A
cache keeps that spectrum across ``no_grad`` calls. For each family, size ``n`` (square
``n × n`` layers) and batch size, this script times the layer's forward under
``torch.no_grad()`` two ways, interleaved so that drift hits both alike:

* ``computed``: the spectrum computed in every forward (the functional op's default);
* ``cached``: the same forward handed a spectrum computed once (``c_spectrum=``), i.e. the
  best any cache can do (it leaves out even the cost of checking that the cache is valid).

It also times a DCNN (``depth`` DC layers of width ``n`` and a classifier) both ways.
Reports medians of repeated runs and ``ratio = computed / cached`` (> 1: the cache helps).

    python benchmarks/bench_cache.py                  # full grid, ≈1–2 min on 2 cores
    python benchmarks/bench_cache.py --quick          # a few seconds
    python benchmarks/bench_cache.py --sizes 1024 --batches 1 --families dc

Runs on one thread by default (``--threads``): on a shared 2-core machine two OpenMP threads
make timings erratic. Writes ``<out>/cache.{csv,json,md}`` (default ``results/benchmarks``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

import compactnn
from compactnn import functional as F
from compactnn.layers import make_linear
from compactnn.layers.circulant import _CirculantFamily
from compactnn.layers.toeplitz import _ToeplitzBase

FAMILIES = ["dc", "circulant_projection", "circulant", "toeplitz", "dtnn"]


def spectrum(layer) -> torch.Tensor:
    """The spectrum the layer's functional op computes per forward."""
    with torch.no_grad():
        if isinstance(layer, _CirculantFamily):
            v = layer._parts()[0]
            return F.circulant_spectrum(v, layer.in_features, layer.out_features)
        return F.toeplitz_spectrum(layer.t, layer.in_features, layer.out_features)


def forward_with(layer, spec):
    """The layer's forward with ``c_spectrum=spec`` (``None``: computed in the op)."""
    if isinstance(layer, _CirculantFamily):
        v, d_in, d_out = layer._parts()

        def fwd(x):
            layer.check_input(x)
            return F.diag_circulant_diag(x, v, d_in=d_in, d_out=d_out, bias=layer.bias,
                                         out_features=layer.out_features, c_spectrum=spec)
    elif isinstance(layer, _ToeplitzBase):
        def fwd(x):
            layer.check_input(x)
            return F.toeplitz_matmul(x, layer.t, layer.out_features, d_out=layer.d,
                                     bias=layer.bias, c_spectrum=spec)
    else:  # pragma: no cover - FAMILIES lists only the two
        raise TypeError(type(layer).__name__)
    return fwd


def patch(model: torch.nn.Module, cached: bool) -> None:
    """Give every FFT layer of ``model`` the computed or the cached forward."""
    for m in model.modules():
        if isinstance(m, (_CirculantFamily, _ToeplitzBase)):
            m.forward = forward_with(m, spectrum(m) if cached else None)


def time_pair(model: torch.nn.Module, x: torch.Tensor, budget_s: float, repeats: int) -> dict:
    """Medians (seconds per forward) of the computed and the cached forward, interleaved."""
    def run(cached):
        patch(model, cached)
        with torch.no_grad():
            model(x)

    for c in (False, True):  # warm up (FFT plans, allocator)
        run(c)
        run(c)
    t0 = time.perf_counter()
    run(False)
    one = max(time.perf_counter() - t0, 1e-6)
    inner = max(1, min(1000, int(budget_s / (2 * repeats) / one)))
    samples = {False: [], True: []}
    for _ in range(repeats):
        for c in (False, True):
            patch(model, c)
            with torch.no_grad():
                t0 = time.perf_counter()
                for _ in range(inner):
                    model(x)
                samples[c].append((time.perf_counter() - t0) / inner)
    computed, cached = statistics.median(samples[False]), statistics.median(samples[True])
    return {"computed_s": computed, "cached_s": cached, "ratio": computed / cached,
            "inner": inner, "repeats": repeats}


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="+", default=FAMILIES)
    ap.add_argument("--sizes", nargs="+", type=int, default=[256, 1024, 4096])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 32, 256])
    ap.add_argument("--depth", type=int, default=4, help="DC layers of the DCNN (0: skip)")
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--budget", type=float, default=0.8, help="seconds per measured config")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: stable on a shared machine; 0: torch's default)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None,
                   help="default: results/benchmarks; with --quick runs/quick-benchmarks "
                        "(a smoke test never overwrites a result)")
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = "runs/quick-benchmarks" if args.quick else "results/benchmarks"
    if args.quick:
        args.sizes, args.batches, args.repeats, args.budget = [256], [1, 32], 5, 0.1
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    configs = [(f, n, b) for f in args.families for n in args.sizes for b in args.batches]
    if args.depth:
        configs += [(f"dcnn-depth{args.depth}", n, b) for n in args.sizes for b in args.batches]
    print(f"{'model':>22} {'n':>6} {'batch':>6} {'computed µs':>12} {'cached µs':>10} "
          f"{'ratio':>6}")
    for name, n, b in configs:
        if name.startswith("dcnn"):
            model = compactnn.DCNN(n, 10, depth=args.depth).eval()
        else:
            model = make_linear(name, n, n).eval()
        x = torch.randn(b, n)
        r = time_pair(model, x, args.budget, args.repeats)
        row = {"model": name, "n": n, "batch": b, **r}
        rows.append(row)
        print(f"{name:>22} {n:>6} {b:>6} {r['computed_s'] * 1e6:>12.1f} "
              f"{r['cached_s'] * 1e6:>10.1f} {r['ratio']:>6.2f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "machine": platform.machine(), "processor": platform.processor(),
            "python": platform.python_version(), "dtype": "float32", "mode": "torch.no_grad()",
            "load_average_1min": round(os.getloadavg()[0], 2),
            "ratio": "computed / cached (> 1: the cache would help)"}
    (out / "cache.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    with open(out / "cache.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = ["# Cached kernel spectrum vs computed per forward (no_grad, float32, CPU)", "",
             f"torch {meta['torch']}, {meta['threads']} thread(s), load average "
             f"{meta['load_average_1min']} when done (a shared machine: ratios move by about "
             "±0.1 from run to run). Median time per forward; ratio = computed / cached "
             "(> 1: a cache would help). Square n × n layers; dcnn-depthK is K DC layers of "
             "width n and a DC classifier. Reproduce: `python benchmarks/bench_cache.py`.", "",
             "| model | n | batch | computed (µs) | cached (µs) | ratio |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['n']} | {r['batch']} | {r['computed_s'] * 1e6:.1f} | "
              f"{r['cached_s'] * 1e6:.1f} | {r['ratio']:.2f} |" for r in rows]
    (out / "cache.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'cache.csv'}, {out / 'cache.json'}, {out / 'cache.md'}")
    return rows


if __name__ == "__main__":
    main()
