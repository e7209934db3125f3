"""Speed and memory of the structured layers, side by side in one process.

For each family, ``nn.Linear`` and a *naive* DC layer (rfft → multiply → irfft → diagonal with
plain autograd, the approach of the DC paper authors' code), at each size n and batch size:
forward, backward and forward+backward wall time (median of repeats) and the bytes autograd
keeps for backward (``saved_tensors_hooks``) and the peak tensor memory of a forward+backward
(CUDA's allocator statistics; on CPU the profiler's memory timeline). Ratios are
against ``nn.Linear`` and against the naive DC layer measured in the same run. Peers
(torch-structured's circulant) are measured when they import.

    python benchmarks/bench_layers.py                 # full grid (≈10–15 min on 2 cores)
    python benchmarks/bench_layers.py --quick         # a few seconds
    python benchmarks/bench_layers.py --sizes 1024 4096 4099 --batches 256
    python benchmarks/bench_layers.py --malloc keep   # glibc keeps freed memory (see
                                                      # compactnn.runtime)

Writes ``<out>/layers.{csv,json,md}`` and ``<out>/layers_time_vs_n.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

import compactnn
from compactnn.functional import circulant_fft_size
from compactnn.layers import make_linear
from compactnn.runtime import keep_freed_memory
from compactnn.train.checkpoint import git_hash

FAMILIES = ["dc", "circulant_projection", "circulant", "toeplitz", "dtnn", "acdc", "afdf"]
DENSE_MAX_N = 8192  # nn.Linear(n, n) beyond this needs > 1 GiB of weights per layer


class NaiveDC(nn.Module):
    """Reference DC layer with plain autograd through torch.fft (what a user writes first)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.randn(n) * math.sqrt(2 / n))
        self.d = nn.Parameter(torch.randint(0, 2, (n,)).float() * 2 - 1)
        self.bias = nn.Parameter(torch.zeros(n))

    def forward(self, x):
        n = self.c.shape[0]
        return torch.fft.irfft(torch.fft.rfft(x, n=n) * torch.fft.rfft(self.c), n=n) * self.d \
            + self.bias


def _peer_circulant(n: int):
    """torch-structured's rFFT circulant (square, power-of-two only), when it imports (it
    needs the ``triton`` package even on CPU). Never a dependency of compactnn."""
    try:
        import torch_structured as ts
    except Exception:  # not installed, or fails without triton
        return None
    try:
        return ts.make_linear("circulant", n, n)
    except ValueError:  # not a power of two
        return None


def saved_bytes(module: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the tensors autograd saves for backward during one forward (deduplicated)."""
    seen: dict[int, int] = {}

    def pack(t):
        key = t.untyped_storage().data_ptr()
        seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x)
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    skip = params | {x.untyped_storage().data_ptr()}
    return sum(v for k, v in seen.items() if k not in skip)


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (the profiler's C++ start/stop lines) for a moment."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_bytes(fn, device) -> int | None:
    """Peak increase of tensor memory while ``fn()`` runs, over what was allocated before:
    CUDA's allocator statistics, or on CPU the profiler's record of every allocation and free
    (including an op's internal workspaces; independent of how malloc keeps freed memory).
    ``None`` when this torch's profiler has no such record."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    try:
        from torch._C._profiler import _EventType
    except ImportError:
        return None
    with _quiet_stderr(), torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation:
            events.append((node.start_time_ns, node.extra_fields.alloc_size))
        stack.extend(node.children)
    live = peak = 0
    for _, size in sorted(events):
        live += size
        peak = max(peak, live)
    return peak


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_modules(modules: dict, x, repeats: int, device) -> dict:
    """Median forward, backward and forward+backward seconds of each module, measured
    round-robin (one call of each module per round, ``repeats`` rounds after 2 warm-up
    rounds) so that a slow spell of a shared machine hits every module alike. Each round runs
    the modules in a new (seeded) random order: a module that runs right after ``nn.Linear``
    finds its data evicted from the caches (measured: up to 2× at small sizes), which should
    not always be the same module — a rotation would keep the same neighbours."""
    grads = {name: torch.randn_like(m(x)) for name, m in modules.items()}
    times = {name: ([], [], []) for name in modules}
    order = random.Random(0)
    for i in range(repeats + 2):
        for name in order.sample(list(modules), len(modules)):
            module = modules[name]
            _sync(device)
            t0 = time.perf_counter()
            y = module(x)
            _sync(device)
            t1 = time.perf_counter()
            y.backward(grads[name])
            _sync(device)
            t2 = time.perf_counter()
            module.zero_grad(set_to_none=True)
            x.grad = None
            del y
            if i >= 2:  # warm-up
                for acc, v in zip(times[name], (t1 - t0, t2 - t1, t2 - t0), strict=True):
                    acc.append(v)
    return {name: {"fwd_s": statistics.median(f), "bwd_s": statistics.median(b),
                   "fwdbwd_s": statistics.median(fb), "rounds_s": fb}
            for name, (f, b, fb) in times.items()}


def fft_floor(batch: int, n: int, repeats: int, device) -> float:
    """Median seconds of the 5 bare batch FFTs a DC forward+backward cannot avoid (3 rfft +
    2 irfft of ``(batch, size)``; size as the DC op chooses): its compute floor."""
    size = circulant_fft_size(n, n, n)
    v = torch.randn(batch, size, device=device)
    vf = torch.fft.rfft(v)
    times = []
    for _ in range(repeats + 1):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(3):
            torch.fft.rfft(v)
        for _ in range(2):
            torch.fft.irfft(vf, n=size)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def measure_bandwidth(device, mib: int = 256) -> float:
    """Copy bandwidth in bytes/s (read + write counted), median of 5."""
    a = torch.empty(mib * 2**20 // 4, device=device)
    b = torch.empty_like(a)
    times = []
    for _ in range(6):
        _sync(device)
        t0 = time.perf_counter()
        b.copy_(a)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * a.numel() * 4 / statistics.median(times[1:])


def candidates(n: int, families, device) -> dict:
    """The modules compared at size n: each family, DC's recompute variant, the naive DC
    layer, ``nn.Linear`` (up to ``DENSE_MAX_N``) and the peer when it imports."""
    cands = {f: make_linear(f, n, n) for f in families}
    if "dc" in families:  # the memory-lean variant: backward rebuilds the activation
        cands["dc(recompute)"] = make_linear("dc", n, n, recompute=True)
    cands["naive_dc"] = NaiveDC(n)
    if n <= DENSE_MAX_N:
        cands["nn.Linear"] = nn.Linear(n, n)
    peer = _peer_circulant(n)
    if peer is not None:
        cands["peer:torch_structured_circulant"] = peer
    return {name: mod.to(device) for name, mod in cands.items()}


def measure_config(n: int, b: int, families, repeats: int, device, bandwidth: float) -> list:
    """One table row per module at size n and batch b: times, memory, ratios, DC's floors."""
    x = torch.randn(b, n, device=device, requires_grad=True)
    cands = candidates(n, families, device)
    reps = repeats if n * b <= 2**21 else max(3, repeats // 3)
    res = time_modules(cands, x, reps, device)
    for name, mod in cands.items():
        res[name]["saved_bytes"] = saved_bytes(mod, x)
        g = torch.randn(b, n, device=device)

        def step(mod=mod, g=g):
            mod(x).backward(g)
            mod.zero_grad(set_to_none=True)
            x.grad = None

        peak = peak_bytes(step, device)
        if peak is not None:
            res[name]["peak_bytes"] = peak
    rows = []
    for name, r in res.items():
        row = {"layer": name, "n": n, "batch": b,
               **{k: v for k, v in r.items() if k != "rounds_s"}}
        for ref in ("nn.Linear", "naive_dc"):
            if ref not in res:
                continue
            key = ref.replace(".", "_").lower()
            # median of the per-round ratios: both calls of a round ran within moments of
            # each other, so a slow spell of the machine cancels
            row[f"speedup_vs_{key}"] = statistics.median(
                a / m for a, m in zip(res[ref]["rounds_s"], r["rounds_s"], strict=True))
            if res[ref]["saved_bytes"]:
                row[f"mem_vs_{key}"] = r["saved_bytes"] / res[ref]["saved_bytes"]
            if res[ref].get("peak_bytes") and "peak_bytes" in r:
                row[f"peak_vs_{key}"] = r["peak_bytes"] / res[ref]["peak_bytes"]
        if name == "dc":
            # must read x and write y forward; read g, x and write dx backward
            row["traffic_floor_fwd_s"] = 2 * b * n * 4 / bandwidth
            row["traffic_floor_fwdbwd_s"] = 5 * b * n * 4 / bandwidth
            row["fft_floor_fwdbwd_s"] = fft_floor(b, n, reps, device)
        rows.append(row)
    return rows


def run(sizes, batches, families, repeats, device, bandwidth: float,
        max_seconds: float) -> list[dict]:
    rows = []
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"copy bandwidth {bandwidth / 1e9:.1f} GB/s")
    t_start = time.perf_counter()
    for n in sizes:
        for b in batches:
            new = measure_config(n, b, families, repeats, device, bandwidth)
            rows += new
            ms = {r["layer"]: r["fwdbwd_s"] * 1e3 for r in new}
            if "dc" in ms:
                print(f"n={n:6d} b={b:4d}  dc {ms['dc']:8.2f} ms  naive {ms['naive_dc']:8.2f} ms"
                      + (f"  linear {ms['nn.Linear']:9.2f} ms" if "nn.Linear" in ms
                         else "  linear  (skipped)"), flush=True)
            if time.perf_counter() - t_start > max_seconds:
                print(f"stopping early: time budget of {max_seconds:.0f}s reached")
                return rows
    return rows


def write_outputs(rows, out: Path, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("layer", "n", "batch"), k))
    with open(out / "layers.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    (out / "layers.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [f"Device: {meta['device']}, torch {meta['torch']}, {meta['threads']} threads, "
             f"malloc: {meta['malloc']}. Modules measured round-robin in one process. "
             "Times are medians (ms); speed ratios are medians of per-round ratios (> 1: faster "
             "than the reference); "
             "saved = bytes kept for backward, peak = peak tensor memory of forward+backward "
             "(above the inputs and parameters), both also relative to the naive DC layer.", "",
             "| layer | n | batch | fwd ms | bwd ms | fwd+bwd ms | × vs nn.Linear | "
             "× vs naive DC | saved MiB | saved vs naive | peak MiB | peak vs naive |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    def fmt(r, k, scale=1.0, d=2):
        return f"{r[k] * scale:.{d}f}" if k in r else "—"

    for r in rows:
        lines.append(f"| {r['layer']} | {r['n']} | {r['batch']} | {fmt(r, 'fwd_s', 1e3)} | "
                     f"{fmt(r, 'bwd_s', 1e3)} | {fmt(r, 'fwdbwd_s', 1e3)} | "
                     f"{fmt(r, 'speedup_vs_nn_linear')} | {fmt(r, 'speedup_vs_naive_dc')} | "
                     f"{r['saved_bytes'] / 2**20:.2f} | {fmt(r, 'mem_vs_naive_dc')} | "
                     f"{fmt(r, 'peak_bytes', 2**-20)} | {fmt(r, 'peak_vs_naive_dc')} |")
    lines += ["", "DC layer against its floors: the 5 bare batch FFTs it cannot avoid (measured in "
              "the same run) and the memory traffic (5 · batch · n · 4 bytes at the measured "
              f"copy bandwidth, {meta['bandwidth_GBps']:.1f} GB/s).", "",
              "| n | batch | DC fwd+bwd ms | FFT floor ms | × FFT floor | traffic floor ms | "
              "× traffic floor |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["layer"] == "dc":
            lines.append(f"| {r['n']} | {r['batch']} | {fmt(r, 'fwdbwd_s', 1e3)} | "
                         f"{fmt(r, 'fft_floor_fwdbwd_s', 1e3)} | "
                         f"{r['fwdbwd_s'] / r['fft_floor_fwdbwd_s']:.2f} | "
                         f"{fmt(r, 'traffic_floor_fwdbwd_s', 1e3, 3)} | "
                         f"{r['fwdbwd_s'] / r['traffic_floor_fwdbwd_s']:.1f} |")
    dc = {(r["n"], r["batch"]): r["fwdbwd_s"] for r in rows if r["layer"] == "dc"}
    odd = [(n, b) for n, b in dc if n & (n - 1) and (1 << (n.bit_length() - 1), b) in dc]
    if odd:
        lines += ["", "Sizes that are not powers of two, against the power of two below them "
                  "(DC fwd+bwd time ratio):", ""]
        for n, b in sorted(odd):
            p2 = 1 << (n.bit_length() - 1)
            lines.append(f"- n={n} vs {p2}, batch {b}: {dc[(n, b)] / dc[(p2, b)]:.2f}×")
    (out / "layers.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        b = max(r["batch"] for r in rows)
        fig, ax = plt.subplots(figsize=(7, 5))
        for layer in sorted({r["layer"] for r in rows}):
            pts = sorted((r["n"], r["fwdbwd_s"]) for r in rows
                         if r["layer"] == layer and r["batch"] == b)
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=layer)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n (square layer n × n)")
        ax.set_ylabel("forward+backward time (s), median")
        ax.set_title(f"batch {b}, {meta['device']}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "layers_time_vs_n.png", dpi=120)
    except ImportError:
        pass


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+",
                   default=[256, 1024, 4096, 4099, 16384, 65536])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 32, 256])
    p.add_argument("--families", nargs="+", default=FAMILIES)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=None,
                   help="default: results/benchmarks; with --quick runs/quick-benchmarks "
                        "(a smoke test never overwrites a result)")
    p.add_argument("--max-seconds", type=float, default=1800)
    p.add_argument("--malloc", choices=["default", "keep"], default="default",
                   help="keep: compactnn.runtime.keep_freed_memory() first (glibc)")
    p.add_argument("--quick", action="store_true", help="tiny grid (smoke test)")
    a = p.parse_args(argv)
    if a.out is None:
        a.out = "runs/quick-benchmarks" if a.quick else "results/benchmarks"
    if a.malloc == "keep" and not keep_freed_memory():
        p.error("--malloc keep needs glibc's mallopt")
    if a.quick:
        a.sizes, a.batches, a.repeats = [256, 257], [8], 3
    device = torch.device(a.device)
    bandwidth = measure_bandwidth(device)
    rows = run(a.sizes, a.batches, a.families, a.repeats, device, bandwidth, a.max_seconds)
    meta = {"malloc": a.malloc, "bandwidth_GBps": bandwidth / 1e9, "git": git_hash(),
            "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "compactnn": compactnn.__version__, "python": platform.python_version(),
            "machine": platform.machine()}
    write_outputs(rows, Path(a.out), meta)
    print(f"wrote {a.out}/layers.{{md,csv,json}} and layers_time_vs_n.png")


if __name__ == "__main__":
    main()
