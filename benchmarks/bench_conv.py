"""Speed, memory and FLOPs of the conv operators against nn.Conv2d, side by side in one process.

Main table: every operator (``compactnn.conv``), 3×3 kernels, padding 1, stride 1, C → C
channels on 32×32 maps, C = 64, 256, 1024, next to ``nn.Conv2d``: forward, backward and
forward+backward median times (the modules measured round-robin, in a new random order per
round, as ``bench_layers.py`` does), peak tensor memory of a forward+backward, and the ratios
to ``nn.Conv2d`` of time (median of per-round ratios) and of multiply-adds (the operators'
``flops``; ``nn.Conv2d``: ``C²·9·H·W``). The batch shrinks as C grows so that a cell stays
within a few seconds on 2 CPU cores (``BATCH``; printed and recorded with every row).

Impl sweep (``--no-impl-sweep`` skips it): the circulant coupling's two implementations
(``impl="conv3d"`` and ``"fft"``) over channels C and channel extents m, forward+backward,
for the rule of ``impl="auto"`` (``compactnn.functional.conv_circulant.circulant_conv_impl``).

    python benchmarks/bench_conv.py                   # main table + impl sweep (≈ 10 min)
    python benchmarks/bench_conv.py --quick           # seconds; writes to a temporary folder
    python benchmarks/bench_conv.py --channels 64 256 --no-impl-sweep
    python benchmarks/bench_conv.py --channels --sweep-channels 4 16   # only the sweep

Writes ``<out>/conv.{md,csv,json}`` (``--out``, default ``results/benchmarks``; with
``--quick`` a temporary folder unless ``--out`` is given).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_layers import peak_bytes, time_modules  # noqa: E402

import compactnn  # noqa: E402
from compactnn.conv import make_conv  # noqa: E402
from compactnn.functional.conv_circulant import circulant_conv_impl  # noqa: E402
from compactnn.train.checkpoint import git_hash  # noqa: E402

#: batch per channel count in the main table (nn.Conv2d fwd+bwd ≈ 0.1–1.5 s on 2 cores)
BATCH = {64: 32, 256: 8, 1024: 1}
#: the operators of the main table: label → (registry name, kwargs)
OPERATORS = {
    "full": ("full", {}),
    "circulant": ("circulant", {}),
    "circulant m=3": ("circulant", {"channel_extent": 3}),
    "circulant m=3 conv3d": ("circulant", {"channel_extent": 3, "impl": "conv3d"}),
    "dc": ("dc", {}),
    "lean": ("lean", {}),
    "separable": ("separable", {}),
}


def _conv2d_macs(c_in: int, c_out: int, k: int, ho: int, wo: int, batch: int) -> int:
    return batch * ho * wo * c_out * c_in * k * k


def measure_main(channels: int, batch: int, size: int, repeats: int, device) -> list[dict]:
    """One row per operator (and nn.Conv2d) at C → C channels, ``size × size`` maps."""
    k = 3
    mods = {"nn.Conv2d": nn.Conv2d(channels, channels, k, padding=1)}
    for label, (name, kw) in OPERATORS.items():
        mods[label] = make_conv(name, channels, channels, k, padding=1, **kw)
    mods = {n: m.to(device) for n, m in mods.items()}
    x = torch.randn(batch, channels, size, size, device=device, requires_grad=True)
    times = time_modules(mods, x, repeats, device)
    ref = times["nn.Conv2d"]
    ref_macs = _conv2d_macs(channels, channels, k, size, size, batch)
    rows = []
    for label, mod in mods.items():
        t = times[label]
        g = torch.randn(batch, channels, size, size, device=device)

        def step(mod=mod, g=g):
            mod(x).backward(g)
            mod.zero_grad(set_to_none=True)
            x.grad = None

        macs = ref_macs if label == "nn.Conv2d" else mod.flops(size, size, batch)
        row = {"op": label, "channels": channels, "batch": batch, "size": size,
               "params": sum(p.numel() for p in mod.parameters()),
               "impl": getattr(mod, "resolved_impl", ""),
               "macs": macs, "macs_vs_conv2d": macs / ref_macs,
               "fwd_s": t["fwd_s"], "bwd_s": t["bwd_s"], "fwdbwd_s": t["fwdbwd_s"],
               # per-round ratios: both ran within moments of each other
               "time_vs_conv2d": statistics.median(
                   a / b for a, b in zip(t["rounds_s"], ref["rounds_s"], strict=True))}
        peak = peak_bytes(step, device)
        if peak is not None:
            row["peak_bytes"] = peak
        rows.append(row)
    for row in rows:
        base = next(r for r in rows if r["op"] == "nn.Conv2d")
        if "peak_bytes" in row and base.get("peak_bytes"):
            row["peak_vs_conv2d"] = row["peak_bytes"] / base["peak_bytes"]
        row["params_vs_conv2d"] = row["params"] / base["params"]
    return rows


def measure_impls(channels: int, extents, size: int, repeats: int, device,
                  conv3d_max_cost: int, work: int = 512) -> list[dict]:
    """conv3d vs fft for C → C at each channel extent; the batch keeps C·batch ≈ ``work``."""
    batch = max(1, work // channels)
    x = torch.randn(batch, channels, size, size, device=device, requires_grad=True)
    rows = []
    for m in extents:
        mods = {"fft": make_conv("circulant", channels, channels, 3, padding=1,
                                 channel_extent=m, impl="fft")}
        if channels * m <= conv3d_max_cost:
            mods["conv3d"] = make_conv("circulant", channels, channels, 3, padding=1,
                                       channel_extent=m, impl="conv3d")
        t = time_modules({n: mod.to(device) for n, mod in mods.items()}, x, repeats, device)
        row = {"channels": channels, "extent": m, "batch": batch, "size": size,
               "fft_s": t["fft"]["fwdbwd_s"],
               "auto": circulant_conv_impl(channels, channels, m, 3)}
        if "conv3d" in t:
            row["conv3d_s"] = t["conv3d"]["fwdbwd_s"]
            row["fft_speedup"] = statistics.median(
                a / b for a, b in zip(t["conv3d"]["rounds_s"], t["fft"]["rounds_s"],
                                      strict=True))
        rows.append(row)
        print(f"  C={channels:5d} m={m:5d} batch={batch:3d}  fft {row['fft_s'] * 1e3:9.2f} ms"
              + (f"  conv3d {row['conv3d_s'] * 1e3:9.2f} ms  conv3d/fft "
                 f"{row['fft_speedup']:.2f}" if "conv3d_s" in row else "  conv3d (skipped)"),
              flush=True)
    return rows


def _fmt(r, key, scale=1.0, digits=2):
    return f"{r[key] * scale:.{digits}f}" if key in r else "—"


def markdown(main_rows, impl_rows, meta) -> str:
    lines = [
        f"# Conv operators vs nn.Conv2d ({meta['device']}, float32)", "",
        f"torch {meta['torch']}, intra-op threads: {meta['threads']}, git {meta['git']}, load "
        f"average {meta['load_average']} when done (a shared machine: ratios move by about ±0.1 "
        f"from run to run). Reproduce: `{meta['command']}`.", "",
        "C → C channels, 3×3 kernels, padding 1, stride 1, square maps; forward+backward of "
        "one batch. Times are medians (ms) of repeated rounds in which every module ran once "
        "in a random order; `time ×` is the median of per-round ratios to `nn.Conv2d` (< 1: "
        "faster), `MACs ×` the ratio of multiply-adds (`op.flops`: convolutions, matrix "
        "products and the conventional 1.25·L·log2 L per real FFT of length L), `peak` the "
        "peak tensor memory of a forward+backward above the inputs and parameters. `circulant` "
        "is full channel coupling (channel extent m = C); `impl` is what `impl=\"auto\"` ran.",
        "", *([meta["note"], ""] if meta.get("note") else []),
        "| op | C | batch | H×W | params | impl | MACs × | time × | fwd ms | bwd ms | "
        "fwd+bwd ms | peak MiB | peak × |",
        "|---|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in main_rows:
        lines.append(
            f"| {r['op']} | {r['channels']} | {r['batch']} | {r['size']}×{r['size']} | "
            f"{r['params']:,} | {r['impl']} | {r['macs_vs_conv2d']:.4f} | "
            f"{r['time_vs_conv2d']:.3f} | {_fmt(r, 'fwd_s', 1e3)} | {_fmt(r, 'bwd_s', 1e3)} | "
            f"{_fmt(r, 'fwdbwd_s', 1e3)} | {_fmt(r, 'peak_bytes', 2**-20, 1)} | "
            f"{_fmt(r, 'peak_vs_conv2d')} |")
    if impl_rows:
        lines += [
            "", "## Circulant coupling: conv3d vs fft", "",
            "Forward+backward of `CirculantConv2d(C, C, 3, padding=1, channel_extent=m)` with "
            "each implementation, median ms; `conv3d / fft` is the median per-round time ratio "
            "(> 1: the FFT path is faster); `auto` is what `impl=\"auto\"` chooses. conv3d is "
            "skipped where its single-channel conv3d (C·m·9 multiply-adds per pixel) would take "
            "minutes.", "",
            "| C | m | batch | H×W | conv3d ms | fft ms | conv3d / fft | auto |",
            "|---:|---:|---:|---|---:|---:|---:|---|"]
        for r in impl_rows:
            lines.append(f"| {r['channels']} | {r['extent']} | {r['batch']} | "
                         f"{r['size']}×{r['size']} | {_fmt(r, 'conv3d_s', 1e3)} | "
                         f"{r['fft_s'] * 1e3:.2f} | {_fmt(r, 'fft_speedup')} | {r['auto']} |")
    return "\n".join(lines) + "\n"


def write_outputs(main_rows, impl_rows, out: Path, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for r in main_rows for k in r},
                  key=lambda k: (k not in ("op", "channels", "batch", "size"), k))
    with open(out / "conv.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(main_rows)
    (out / "conv.json").write_text(json.dumps(
        {"meta": meta, "rows": main_rows, "impl_sweep": impl_rows}, indent=1))
    (out / "conv.md").write_text(markdown(main_rows, impl_rows, meta))


def _command(argv: list[str]) -> str:
    """The command line that reproduces the run (without ``--note``, which measures nothing)."""
    args, skip = [], False
    for v in argv:
        if skip or v == "--note":
            skip = not skip
            continue
        if v.startswith("--note="):
            continue
        args.append(shlex.quote(v))
    return " ".join(["python benchmarks/bench_conv.py", *args])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--channels", type=int, nargs="*", default=list(BATCH),
                   help="channel counts of the main table (none: only the impl sweep)")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--sweep-channels", type=int, nargs="+", default=[4, 16, 64, 256, 1024])
    p.add_argument("--no-impl-sweep", dest="impl_sweep", action="store_false")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=None,
                   help="output folder (default results/benchmarks; --quick: a temporary one)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--note", default="", help="a paragraph for the Markdown page (how and why "
                   "this run differs, e.g. --threads)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    a = p.parse_args(argv)
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    if a.quick:
        a.channels, a.size, a.repeats, a.sweep_channels = [16], 8, 2, [4, 16]
    out = Path(a.out) if a.out else Path(
        tempfile.mkdtemp(prefix="bench_conv_") if a.quick else "results/benchmarks")
    device = torch.device(a.device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    main_rows = []
    for c in a.channels:
        batch = 2 if a.quick else BATCH.get(c, max(1, 2048 // c))
        t0 = time.perf_counter()
        rows = measure_main(c, batch, a.size, a.repeats, device)
        main_rows += rows
        print(f"C={c} batch={batch} ({time.perf_counter() - t0:.0f} s):", flush=True)
        for r in rows:
            print(f"  {r['op']:22s} fwd+bwd {r['fwdbwd_s'] * 1e3:9.2f} ms  time × "
                  f"{r['time_vs_conv2d']:.3f}  MACs × {r['macs_vs_conv2d']:.4f}", flush=True)
    impl_rows = []
    if a.impl_sweep:
        print("impl sweep (fwd+bwd):")
        for c in a.sweep_channels:
            extents = sorted({m for m in (1, 3, 9, c // 4, c) if 1 <= m <= c})
            impl_rows += measure_impls(c, extents, a.size, a.repeats, device,
                                       conv3d_max_cost=256 if a.quick else 64 * 256,
                                       work=32 if a.quick else 512)
    meta = {"git": git_hash(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(),
            "compactnn": compactnn.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "repeats": a.repeats,
            "load_average": " ".join(f"{v:.2f}" for v in os.getloadavg()), "note": a.note,
            "command": _command(sys.argv[1:] if argv is None else argv)}
    write_outputs(main_rows, impl_rows, out, meta)
    print(markdown(main_rows, impl_rows, meta))
    print(f"wrote {out}/conv.{{md,csv,json}}")


if __name__ == "__main__":
    main()
