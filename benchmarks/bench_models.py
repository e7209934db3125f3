"""Whole-model benchmark: a deep DCNN vs the naive-autograd DCNN vs a dense MLP of the same width.

Training throughput (samples/s of forward + backward + SGD step), the bytes autograd saves
for backward, the process's peak resident memory (each model in a fresh subprocess), and
inference latency at batch 1 — medians, all models measured by the same script on the same
machine.

    python benchmarks/bench_models.py                       # width 4096, depth 32, batch 256
    python benchmarks/bench_models.py --quick               # width 256, depth 4 (seconds)

Writes ``<out>/models.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_layers import NaiveDC, peak_bytes, saved_bytes  # noqa: E402

from compactnn import DCNN, MLP  # noqa: E402
from compactnn.runtime import keep_freed_memory  # noqa: E402
from compactnn.train.checkpoint import git_hash  # noqa: E402


def build(name: str, width: int, depth: int) -> nn.Module:
    if name == "dcnn":
        return DCNN(width, 10, width=width, depth=depth, classifier="dense")
    if name == "dcnn_recompute":  # backward rebuilds each layer's activation: half the memory
        return DCNN(width, 10, width=width, depth=depth, classifier="dense",
                    layer_kwargs={"recompute": True})
    if name == "naive_dcnn":
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [NaiveDC(width), nn.LeakyReLU(0.5)]
        return nn.Sequential(*layers, nn.Linear(width, 10))
    if name == "dense_mlp":
        return MLP(width, 10, width=width, depth=depth, activation="leaky_relu")
    raise ValueError(name)


def measure(name: str, width: int, depth: int, batch: int, steps: int) -> dict:
    torch.manual_seed(0)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = build(name, width, depth)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    x, y = torch.randn(batch, width), torch.randint(0, 10, (batch,))

    def train_step():
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        train_step()
        if i:  # first step is warm-up
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    # the peak of live tensor bytes during one step (the allocator's record, malloc-independent)
    tensor_peak = peak_bytes(train_step, torch.device("cpu"))
    act = saved_bytes(model, x.requires_grad_())
    x1 = torch.randn(1, width)
    lat = []
    with torch.inference_mode():
        for _ in range(30):
            t0 = time.perf_counter()
            model(x1)
            lat.append(time.perf_counter() - t0)
    return {"model": name, "width": width, "depth": depth, "batch": batch,
            "params": sum(p.numel() for p in model.parameters()),
            "step_s": step, "samples_per_s": batch / step, "saved_MiB": act / 2**20,
            "peak_rss_delta_MiB": peak_mib, "latency_b1_ms": statistics.median(lat[5:]) * 1e3,
            "peak_tensor_MiB": None if tensor_peak is None else tensor_peak / 2**20}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=4096)
    p.add_argument("--depth", type=int, default=32)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3,
                   help="each model runs this many times, alternating; medians are reported")
    p.add_argument("--models", nargs="+",
                   default=["dcnn", "dcnn_recompute", "naive_dcnn", "dense_mlp"])
    p.add_argument("--out", default=None,
                   help="default: results/benchmarks; with --quick runs/quick-benchmarks "
                        "(a smoke test never overwrites a result)")
    p.add_argument("--malloc", choices=["default", "keep"], default="default",
                   help="keep: compactnn.runtime.keep_freed_memory() in each model's process")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--single", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.out is None:
        a.out = "runs/quick-benchmarks" if a.quick else "results/benchmarks"
    if a.quick:
        a.width, a.depth, a.batch, a.steps, a.rounds = 256, 4, 32, 2, 1
    if a.single:  # child process: one model, JSON on stdout
        if a.malloc == "keep" and not keep_freed_memory():
            p.error("--malloc keep needs glibc's mallopt")
        print(json.dumps(measure(a.single, a.width, a.depth, a.batch, a.steps)))
        return
    runs: dict[str, list[dict]] = {name: [] for name in a.models}
    for k in range(a.rounds):  # models alternate, so a slow spell of the machine hits all
        for name in a.models:
            cmd = [sys.executable, __file__, "--single", name, "--width", str(a.width),
                   "--depth", str(a.depth), "--batch", str(a.batch), "--steps", str(a.steps),
                   "--malloc", a.malloc]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            runs[name].append(r)
            print(f"round {k + 1} {name:11s} params {r['params']:>12,}  "
                  f"{r['samples_per_s']:9.1f} samples/s  saved {r['saved_MiB']:8.1f} MiB  "
                  f"peak +{r['peak_rss_delta_MiB']:8.1f} MiB  "
                  f"latency(b=1) {r['latency_b1_ms']:8.2f} ms", flush=True)
    rows = []
    for rs in runs.values():
        row = {**rs[0], "malloc": a.malloc, "rounds": len(rs), "git": git_hash()}
        for key in ("step_s", "samples_per_s", "peak_rss_delta_MiB", "latency_b1_ms"):
            row[key] = statistics.median(r[key] for r in rs)
        rows.append(row)
    ref = {r["model"]: r for r in rows}
    lines = [f"Width {a.width}, depth {a.depth}, batch {a.batch}, SGD step, "
             f"torch {torch.__version__}, {torch.get_num_threads()} threads, malloc {a.malloc} "
             f"(medians over {a.rounds} alternating rounds; each run in its own process).", "",
             "| model | parameters | samples/s | saved for backward (MiB) | peak tensor memory "
             "of a step (MiB) | peak RSS increase (MiB) | latency batch 1 (ms) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        tensor_peak = "—" if r["peak_tensor_MiB"] is None else f"{r['peak_tensor_MiB']:.1f}"
        lines.append(f"| {r['model']} | {r['params']:,} | {r['samples_per_s']:.1f} | "
                     f"{r['saved_MiB']:.1f} | {tensor_peak} | {r['peak_rss_delta_MiB']:.1f} | "
                     f"{r['latency_b1_ms']:.2f} |")
    for name in ("dcnn", "dcnn_recompute"):
        if name not in ref or "naive_dcnn" not in ref:
            continue
        d, nv = ref[name], ref["naive_dcnn"]
        lines += ["", f"{name} vs naive DCNN: {d['samples_per_s'] / nv['samples_per_s']:.2f}× "
                      f"throughput, {d['saved_MiB'] / nv['saved_MiB']:.2f}× saved activations, "
                      + (f"{d['peak_tensor_MiB'] / nv['peak_tensor_MiB']:.2f}× peak tensor "
                         "memory of a step, " if d["peak_tensor_MiB"] else "")
                      + f"{d['peak_rss_delta_MiB'] / max(nv['peak_rss_delta_MiB'], 1e-9):.2f}× "
                      "peak RSS increase."]
    if "dcnn" in ref and "dense_mlp" in ref:
        d, de = ref["dcnn"], ref["dense_mlp"]
        lines += [f"DCNN vs dense MLP: {d['samples_per_s'] / de['samples_per_s']:.1f}× "
                  f"throughput, {de['latency_b1_ms'] / d['latency_b1_ms']:.1f}× lower latency, "
                  f"{de['params'] / d['params']:.0f}× fewer parameters."]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "models.json").write_text(json.dumps(rows, indent=1))
    (out / "models.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
