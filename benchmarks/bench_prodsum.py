"""Speed of the ProdSum operators, side by side in one process.

Two parts, each against the dense PyTorch module of the same shape:

* linear: the ``kronecker`` (KFC, rank 2) and ``prodsum`` (depth 2, 3 dilated terms) layers
  against ``nn.Linear(n, n)``;
* conv: a 2-D convolution applied as the product of sums ``Σ_pq K_pq ⊗ S_p ⊗ S_q``
  (``functional.conv2d_as_prodsum`` + ``prodsum_matmul``; the shift matrices built once, the
  taps read from the trainable kernel every call) against ``nn.Conv2d`` with the same weights.

Forward, backward and forward+backward wall time: medians of repeated rounds, the modules of
a part measured round-robin in a random order per round (``bench_layers.time_modules``); speed
ratios are medians of per-round ratios against the dense module (> 1: faster than it).

    python benchmarks/bench_prodsum.py             # full grid (a few minutes on 2 cores)
    python benchmarks/bench_prodsum.py --quick     # seconds; writes to a temporary folder
    python benchmarks/bench_prodsum.py --threads 1 --repeats 25   # the committed results

Writes ``<out>/prodsum.{csv,json,md}`` (default ``results/benchmarks``; with ``--quick`` and no
``--out``, a new temporary folder, so a smoke run never replaces a result).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_layers import time_modules  # noqa: E402

import compactnn  # noqa: E402
from compactnn import functional as F  # noqa: E402
from compactnn.layers import make_linear  # noqa: E402
from compactnn.train.checkpoint import git_hash  # noqa: E402

LINEAR = {"kronecker": {"rank": 2}, "prodsum": {"depth": 2, "terms": 3}}
#: (name, in channels, out channels, side, kernel, padding, dilation): the two convolutions of
#: the ProdSumNet paper's reference MNIST CNN and a dilated one
CONVS = [("conv5x5 1→32 @28", 1, 32, 28, 5, 2, 1), ("conv5x5 32→64 @14", 32, 64, 14, 5, 2, 1),
         ("conv3x3 d2 16→16 @28", 16, 16, 28, 3, 2, 2)]


class ProdSumConv2d(nn.Module):
    """``nn.Conv2d`` (square input, stride 1, zeros padding, bias) computed as the product of
    sums of ``functional.conv2d_as_prodsum``; shares ``conv``'s weight and bias."""

    def __init__(self, conv: nn.Conv2d, side: int) -> None:
        super().__init__()
        self.conv, self.side = conv, side
        (_, s_h, s_w), = F.conv2d_as_prodsum(conv.weight.detach(), side, side,
                                             padding=conv.padding, dilation=conv.dilation)
        self.register_buffer("s_h", s_h)
        self.register_buffer("s_w", s_w)
        self.out_side = s_h.shape[1]

    def forward(self, x):
        w = self.conv.weight
        taps = w.permute(2, 3, 0, 1).reshape(-1, w.shape[0], w.shape[1])
        bias = self.conv.bias.repeat_interleave(self.out_side ** 2)
        y = F.prodsum_matmul(x.reshape(x.shape[0], -1), [(taps, self.s_h, self.s_w)],
                             bias=bias)
        return y.reshape(x.shape[0], w.shape[0], self.out_side, self.out_side)


def _rows(res: dict, ref: str, params: dict, common: dict) -> list[dict]:
    rows = []
    for name, r in res.items():
        rows.append({**common, "module": name, "params": params[name],
                     "fwd_ms": r["fwd_s"] * 1e3, "bwd_ms": r["bwd_s"] * 1e3,
                     "fwdbwd_ms": r["fwdbwd_s"] * 1e3,
                     "speedup_vs_dense": statistics.median(
                         a / m for a, m in zip(res[ref]["rounds_s"], r["rounds_s"],
                                               strict=True))})
    return rows


def measure_linear(n: int, batch: int, repeats: int, device) -> list[dict]:
    mods = {"nn.Linear": nn.Linear(n, n)}
    mods.update({name: make_linear(name, n, n, **kw) for name, kw in LINEAR.items()})
    mods = {k: m.to(device) for k, m in mods.items()}
    x = torch.randn(batch, n, device=device, requires_grad=True)
    res = time_modules(mods, x, repeats, device)
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in mods.items()}
    return _rows(res, "nn.Linear", params, {"part": "linear", "config": f"{n}x{n}",
                                             "batch": batch})


def measure_conv(spec, batch: int, repeats: int, device) -> list[dict]:
    name, c_in, c_out, side, k, pad, dil = spec
    conv = nn.Conv2d(c_in, c_out, k, padding=pad, dilation=dil).to(device)
    mods = {"nn.Conv2d": conv, "prodsum-conv": ProdSumConv2d(conv, side).to(device)}
    x = torch.randn(batch, c_in, side, side, device=device, requires_grad=True)
    with torch.no_grad():  # the same operator: checked before it is timed
        torch.testing.assert_close(mods["prodsum-conv"](x), conv(x), rtol=1e-4, atol=1e-4)
    res = time_modules(mods, x, repeats, device)
    params = {k: sum(p.numel() for p in conv.parameters()) for k in mods}
    return _rows(res, "nn.Conv2d", params, {"part": "conv", "config": name, "batch": batch})


def write_outputs(rows: list[dict], out: Path, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "prodsum.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    (out / "prodsum.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = [f"# ProdSum operators against dense modules ({meta['device']}, float32)", "",
             f"torch {meta['torch']}, {meta['threads']} thread(s), commit {meta['git']}, load "
             f"average {meta['load_average_1min']} when done (a shared machine: single times "
             "scatter, the per-round ratios much less). "
             "Modules of a configuration measured round-robin in one process; times are medians "
             "(ms); × dense = median of per-round time ratios dense / module (> 1: faster than "
             "the dense module). Reproduce: "
             f"`{' '.join(['python benchmarks/bench_prodsum.py', meta['args']]).strip()}`.", ""]
    for part, ref in (("linear", "nn.Linear"), ("conv", "nn.Conv2d")):
        sel = [r for r in rows if r["part"] == part]
        if not sel:
            continue
        lines += [f"## {part} (against {ref})", "",
                  "| config | batch | module | params | fwd ms | bwd ms | fwd+bwd ms | "
                  "× dense |", "|---|---:|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['config']} | {r['batch']} | {r['module']} | {r['params']:,} | "
                  f"{r['fwd_ms']:.3f} | {r['bwd_ms']:.3f} | {r['fwdbwd_ms']:.3f} | "
                  f"{r['speedup_vs_dense']:.2f} |" for r in sel]
        lines.append("")
    ranges = {}
    for r in rows:
        if r["module"] not in ("nn.Linear", "nn.Conv2d"):
            ranges.setdefault(r["module"], []).append(r["speedup_vs_dense"])
    if ranges:
        lines += ["## Summary", ""]
        lines += [f"- {m}: {min(v):.2f}–{max(v):.2f}× the dense module's speed over "
                  f"{len(v)} configurations" for m, v in ranges.items()]
        lines += ["", "The ProdSum-built convolution multiplies by each tap's fixed shift "
                  "matrices as dense `H_out × H` and `W_out × W` products (the general op knows "
                  "nothing of their sparsity), about `H` times the work of shifting, and carries "
                  "a `kh·kw`-fold intermediate: it shows the equivalence, it is not a fast "
                  "convolution. The layers' cost per sample grows as `n^1.5` against "
                  "`nn.Linear`'s `n²`, so the gap widens with `n`; large batches make the "
                  "dense product more efficient per sample.", ""]
    (out / "prodsum.md").write_text("\n".join(lines))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[784, 1024, 4096])
    p.add_argument("--batches", type=int, nargs="+", default=[32, 256])
    p.add_argument("--conv-batches", type=int, nargs="+", default=[32])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's); 1 is steadier on a busy machine")
    p.add_argument("--out", default=None,
                   help="folder for prodsum.{csv,json,md} (default results/benchmarks; "
                        "with --quick a new temporary folder)")
    p.add_argument("--quick", action="store_true", help="tiny grid (smoke test)")
    a = p.parse_args(argv)
    convs = CONVS
    if a.quick:
        a.sizes, a.batches, a.conv_batches, a.repeats = [64, 100], [8], [4], 3
        convs = [("conv3x3 2→3 @10", 2, 3, 10, 3, 1, 1), ("conv3x3 d2 2→2 @9", 2, 2, 9, 3, 2, 2)]
    out = Path(a.out) if a.out else (
        Path(tempfile.mkdtemp(prefix="bench_prodsum-")) if a.quick else Path("results/benchmarks"))
    device = torch.device(a.device)
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    rows, t0 = [], time.perf_counter()
    for n in a.sizes:
        for b in a.batches:
            new = measure_linear(n, b, a.repeats, device)
            rows += new
            print("  ".join(f"{r['module']} {r['fwdbwd_ms']:.3f} ms" for r in new)
                  + f"   (n={n}, batch {b})", flush=True)
    for spec in convs:
        for b in a.conv_batches:
            new = measure_conv(spec, b, a.repeats, device)
            rows += new
            print("  ".join(f"{r['module']} {r['fwdbwd_ms']:.3f} ms" for r in new)
                  + f"   ({spec[0]}, batch {b})", flush=True)
    meta = {"git": git_hash(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(),
            "compactnn": compactnn.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "seconds": round(time.perf_counter() - t0, 1),
            "load_average_1min": round(os.getloadavg()[0], 2), "quick": a.quick,
            "args": " ".join(sys.argv[1:] if argv is None else argv)}
    write_outputs(rows, out, meta)
    print(f"wrote {out}/prodsum.{{md,csv,json}}")


if __name__ == "__main__":
    main()
