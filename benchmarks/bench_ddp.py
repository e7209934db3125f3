"""Data-parallel DCNN training throughput: one process against two (torchrun, gloo, CPU).

Trains a DCNN (``--depth`` DC layers of width 784 and a DC classifier, Fashion-MNIST's shape,
random data) with ``fit`` at global batch ``--batch`` (128) in four setups:

* ``1p×1t``: one process, one thread — the baseline;
* ``1p×2t``: one process, two intra-op threads — the fair rival on 2 cores;
* ``2p×1t``: ``torchrun --nproc_per_node 2``, one thread each, DDP, the sharded sampler and
  :class:`~compactnn.train.distributed.DistributedTask` taking the global batch sizes from the
  sampler — what ``compactnn train`` under torchrun is meant to run;
* ``2p×1t all-reduced sizes``: DistributedTask without the sampler (one all-reduce of the
  shares' sizes per step besides DDP's gradient all-reduce);
* ``2p×1t plain``: the bare task (exact too here: 128 splits evenly), no loss scaling;
* ``1p×1t half batch``: one rank's share of the work alone, no communication.

Each setup runs ``--rounds`` times, in turn, each run a fresh process group; a run trains
``--windows`` timed epochs of ``--steps`` steps after one warm-up epoch (fit's per-epoch
training time). Reports the median samples/s over all timed windows, the speed-up over
``1p×1t`` and, measured inside the 2-process runs, the time of one gloo all-reduce of the
model's gradients (one flat tensor of all parameters).

    python benchmarks/bench_ddp.py            # ≈1 min on 2 cores
    python benchmarks/bench_ddp.py --quick    # a few seconds of training, mostly start-up

Writes ``<out>/ddp.{csv,json,md}`` (default ``results/benchmarks``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETUPS = [  # name, processes, threads per process, task, batch divisor
    ("1p×1t", 1, 1, "scaled", 1),
    ("1p×2t", 1, 2, "scaled", 1),
    ("2p×1t", 2, 1, "scaled", 1),
    ("2p×1t all-reduced sizes", 2, 1, "allreduce", 1),
    ("2p×1t plain", 2, 1, "plain", 1),
    ("1p×1t half batch", 1, 1, "scaled", 2),  # one rank's share, no communication
]
_TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                 "LOCAL_WORLD_SIZE", "GROUP_RANK", "TORCHELASTIC_RUN_ID")


# --- one run (a process of it) --------------------------------------------------------------
def worker(args) -> None:
    import torch
    from torch import distributed as dist
    from torch.utils.data import DataLoader, TensorDataset

    from compactnn.config import TrainConfig
    from compactnn.models import DCNN
    from compactnn.train import Classification, fit
    from compactnn.train.distributed import (
        DistributedTask,
        ShardedEpochBatches,
        destroy_distributed,
        init_distributed,
        unwrap_model,
        wrap_model,
    )

    torch.set_num_threads(args.threads)
    info = init_distributed("cpu", timeout_s=120)
    try:
        n = args.batch * args.steps
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(n, 784, generator=g), torch.randint(0, 10, (n,), generator=g)
        sampler = ShardedEpochBatches(n, args.batch, torch.Generator().manual_seed(1),
                                      rank=info.rank, world_size=info.world_size)
        loader = DataLoader(TensorDataset(x, y), batch_size=None, sampler=sampler)
        torch.manual_seed(0)
        model = DCNN(784, 10, depth=args.depth)
        task = (Classification() if args.task == "plain" else
                DistributedTask(Classification(), None if args.task == "allreduce" else sampler))
        cfg = TrainConfig(epochs=args.windows + 1, batch_size=args.batch, schedule="constant",
                          device=info.device)
        hist = fit(wrap_model(model, info), {"train": loader}, task, cfg, progress=False)
        times = [e["time_s"] for e in hist["epochs"][1:]]  # the first: warm-up
        allreduce_us = None
        if info.distributed:  # one all-reduce of all gradients, as one flat tensor
            flat = torch.cat([p.detach().reshape(-1) for p in unwrap_model(model).parameters()])
            for _ in range(5):
                dist.all_reduce(flat)
            t0, reps = time.perf_counter(), 50
            for _ in range(reps):
                dist.all_reduce(flat)
            allreduce_us = (time.perf_counter() - t0) / reps * 1e6
            dist.barrier()
        if info.is_main:
            Path(args.worker_out).write_text(json.dumps({
                "window_s": times, "samples_per_window": args.batch * args.steps,
                "params": sum(p.numel() for p in model.parameters()),
                "allreduce_us": allreduce_us}))
    finally:
        destroy_distributed()


# --- the driver ---------------------------------------------------------------------------
def run_setup(procs: int, threads: int, task: str, batch: int, args, tmp: Path,
              failures: list) -> dict:
    out = tmp / f"run-{procs}-{threads}-{task}-{time.monotonic_ns()}.json"
    cmd = [__file__, "--worker", "--worker-out", str(out), "--threads", str(threads),
           "--task", task, "--batch", str(batch), "--steps", str(args.steps),
           "--windows", str(args.windows), "--depth", str(args.depth)]
    cmd = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
            str(procs)] + cmd) if procs > 1 else [sys.executable] + cmd
    env = {k: v for k, v in os.environ.items() if k not in _TORCHRUN_ENV}
    env["OMP_NUM_THREADS"] = str(threads)
    for _attempt in range(2):  # a 2-process run failed ~1 in 30 runs here (gloo): retry once
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode == 0:
            break
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        failures.append(f"{procs}p×{threads}t {task}: exit {proc.returncode}: {tail[-300:]}")
    else:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return json.loads(out.read_text())


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128, help="global batch size")
    ap.add_argument("--steps", type=int, default=40, help="steps per timed window")
    ap.add_argument("--windows", type=int, default=5, help="timed windows per run")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each setup, interleaved")
    ap.add_argument("--depth", type=int, default=4, help="DC layers of width 784")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None,
                   help="default: results/benchmarks; with --quick runs/quick-benchmarks "
                        "(a smoke test never overwrites a result)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--task", default="scaled", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = "runs/quick-benchmarks" if args.quick else "results/benchmarks"
    if args.worker:
        worker(args)
        return []
    if args.quick:
        args.steps, args.windows, args.rounds = 4, 2, 1

    import torch

    import compactnn

    windows: dict[str, list[float]] = {name: [] for name, *_ in SETUPS}
    allreduce: dict[str, list[float]] = {name: [] for name, *_ in SETUPS}
    params, failures, loads = None, [], []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            loads.append(round(os.getloadavg()[0], 2))
            for name, procs, threads, task, div in SETUPS:
                r = run_setup(procs, threads, task, args.batch // div, args, Path(tmp), failures)
                windows[name] += [r["samples_per_window"] / t for t in r["window_s"]]
                if r["allreduce_us"] is not None:
                    allreduce[name].append(r["allreduce_us"])
                params = r["params"]
    base = statistics.median(windows["1p×1t"])
    rows = []
    for name, procs, threads, task, div in SETUPS:
        sps = statistics.median(windows[name])
        rows.append({"setup": name, "processes": procs, "threads_per_process": threads,
                     "task": "DistributedTask" if task == "scaled" else "Classification",
                     "samples_per_s": round(sps, 1),
                     "batch": args.batch // div,
                     "ms_per_step": round(args.batch // div / sps * 1e3, 3),
                     "speedup_vs_1p1t": round(sps / base, 3),
                     "samples_per_s_min": round(min(windows[name]), 1),
                     "samples_per_s_max": round(max(windows[name]), 1),
                     "windows": len(windows[name]),
                     "grad_allreduce_us": (round(statistics.median(allreduce[name]), 1)
                                           if allreduce[name] else None)})
    meta = {"torch": torch.__version__, "compactnn": compactnn.__version__,
            "commit": _commit(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "model": f"DCNN(784, 10, depth={args.depth}) — {params} parameters",
            "params": params,
            "global_batch": args.batch, "steps_per_window": args.steps,
            "windows_per_run": args.windows, "rounds": args.rounds,
            "load_average_1min": round(os.getloadavg()[0], 2),
            "load_average_1min_per_round": loads, "failed_attempts": failures,
            "wall_s": round(time.perf_counter() - t_start, 1)}
    write(rows, meta, Path(args.out))
    return rows


def _commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=Path(__file__).parent, timeout=10)
        return done.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write(rows: list[dict], meta: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "ddp.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    with open(out / "ddp.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [
        "# Data-parallel DCNN training: 1 vs 2 processes (torchrun, gloo, CPU)", "",
        f"torch {meta['torch']}, commit {meta['commit']}, {meta['cpus']} CPU cores, load average "
        f"{meta['load_average_1min']} when done. {meta['model']}, random 784-wide inputs, "
        f"10 classes, global batch {meta['global_batch']}, Adam, `fit` end to end (batches from "
        f"the sampler, loss, backward, all-reduce, step, meters). Median samples/s over "
        f"{rows[0]['windows']} timed windows of {meta['steps_per_window']} steps "
        f"({meta['rounds']} runs per setup, interleaved, each after a warm-up epoch); min–max "
        f"over the windows. Reproduce: `python benchmarks/bench_ddp.py`.", "",
        "| setup | processes × threads | batch per process | samples/s | ms/step | vs 1p×1t "
        "| min–max samples/s | gradient all-reduce (µs) |",
        "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ar = "" if r["grad_allreduce_us"] is None else f"{r['grad_allreduce_us']:.0f}"
        per = r["batch"] // r["processes"]
        lines.append(f"| {r['setup']} | {r['processes']} × {r['threads_per_process']} | {per} "
                     f"| {r['samples_per_s']:.0f} | {r['ms_per_step']:.2f} "
                     f"| {r['speedup_vs_1p1t']:.2f}× | {r['samples_per_s_min']:.0f}–"
                     f"{r['samples_per_s_max']:.0f} | {ar} |")
    by = {r["setup"]: r for r in rows}
    full, half, ddp = by["1p×1t"], by["1p×1t half batch"], by["2p×1t"]
    ideal = 2 * half["samples_per_s"]
    lines += [
        "", "## What limits scaling on 2 cores", "",
        f"- **Work that does not split.** Two ranks each run the half batch; one process runs "
        f"that in {half['ms_per_step']:.2f} ms against {full['ms_per_step']:.2f} ms for the whole "
        f"batch ({half['ms_per_step'] / full['ms_per_step']:.2f}×, not 0.5×): the optimizer "
        f"step over all parameters, each layer's parameter-sized kernel FFT and `fit`'s Python "
        f"per step are paid on every rank. Without any communication two processes would reach "
        f"at most {ideal:.0f} samples/s ({ideal / full['samples_per_s']:.2f}× 1p×1t); they "
        f"reach {ddp['samples_per_s']:.0f} ({ddp['samples_per_s'] / ideal:.0%} of that).",
        f"- **Communication latency, not bandwidth.** The model has {meta['params']} "
        f"parameters ({meta['params'] * 4 / 1024:.0f} KiB of gradients); a gloo all-reduce of "
        f"them over loopback TCP took {ddp['grad_allreduce_us'] or 0:.0f} µs here. An 8-byte "
        "all-reduce of the shares' sizes costs about as much (2p×1t all-reduced sizes: "
        f"{by['2p×1t all-reduced sizes']['ms_per_step']:.2f} ms/step against "
        f"{ddp['ms_per_step']:.2f}), which is why `DistributedTask` reads the sizes from the "
        "sampler. Each step waits for the slower rank: the ranks run in lockstep, so any "
        "other load on either core (this machine is shared; see the load average) stalls both "
        "— the spread of the 2-process windows.",
        "- **Two cores, nothing spare.** The two ranks take both cores; torchrun's agent, the "
        "gloo threads and the OS share them. The fair rival is one process with two intra-op "
        "threads (1p×2t), which splits the FFTs and matrix products of the whole batch without "
        "copying anything, and wins here. Both depend on having the two cores to themselves: "
        "in an earlier run beside a test suite (load average ≈ 3) 1p×2t fell to 213 samples/s "
        "(OpenMP's spinning barriers wait for a descheduled thread) and 2p×1t to 0.35–0.57× "
        "of 1p×1t, which held at ≈23,000.",
        "- Scaling improves with the work per step (bigger batches, wider or deeper models), "
        "which grows while the fixed per-step costs and the all-reduce latency do not; across "
        "GPUs (nccl) the same code applies.",
    ]
    if meta.get("failed_attempts"):
        lines += ["", f"Failed attempts, each rerun once: {'; '.join(meta['failed_attempts'])}."]
    (out / "ddp.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    rows = main()
    for r in rows:
        print(f"{r['setup']:>12}  {r['samples_per_s']:>9.0f} samples/s  "
              f"{r['ms_per_step']:>7.2f} ms/step  {r['speedup_vs_1p1t']:.2f}×")
