"""YouTube-8M throughput on generated TFRecords in the real format: examples/s of the reader
(framing + CRC checks + protobuf parsing + batching, video and frame level) and of training
(forward + backward + gradient clipping + Adam, the paper's models), and the epoch time of the
real training set extrapolated from them (the slower of reading and training bounds a step).

    python benchmarks/youtube8m.py            # the paper's model sizes
    python benchmarks/youtube8m.py --quick    # small shapes (seconds): a smoke test

Writes ``<out>/youtube8m.{json,csv,md}`` (default ``results/benchmarks``; ``--quick``:
``runs/quick-benchmarks``). Frame counts of the generated videos are drawn uniformly from
``--frames`` (real videos have up to 300).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from compactnn.data.youtube8m import (
    TRAIN_VIDEOS_2018,
    YouTube8MStream,
    find_tfrecords,
    write_synthetic_shards,
)
from compactnn.models import make_model
from compactnn.train.checkpoint import git_hash

VIDEO_MODELS = {
    "video original (dense)": dict(layer="dense", depth=1, classifier="dense",
                                   activation="relu"),
    "video 4 DC": dict(layer="dc", depth=4),
    "video 32 DC": dict(layer="dc", depth=32),
    "video 4 DC + 1 FC": dict(layer="dc", depth=4, classifier="dense"),
}
FRAME_MODELS = {"frame original": {}, "frame DBoF with DC": dict(dbof="dc"),
                "frame FC with DC": dict(fc="dc"), "frame MoE with DC": dict(moe="dc")}


def reader_rate(files: list[str], level: str, batch: int, rounds: int) -> tuple[float, int]:
    """Examples/s of one pass over ``files`` (median over ``rounds``) and the count."""
    times, n = [], 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        n = sum(len(x) for x, _ in YouTube8MStream(files, level, batch))
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times), n


def train_rate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Examples/s of training steps on one batch (median step time after one warm-up)."""
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    model.train()
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    return len(x) / statistics.median(times)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--video-batch", type=int, default=1024)
    p.add_argument("--frame-batch", type=int, default=16)
    p.add_argument("--frames", type=int, nargs=2, default=(150, 300))
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    if a.out is None:
        a.out = "runs/quick-benchmarks" if a.quick else "results/benchmarks"
    if a.quick:
        a.video_batch, a.frame_batch, a.frames, a.steps, a.rounds = 32, 2, (5, 20), 1, 1
    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video_n = 2 * a.video_batch
        write_synthetic_shards(Path(tmp) / "video", "video", shards=4,
                               videos=video_n // 4, seed=0)
        write_synthetic_shards(Path(tmp) / "frame", "frame", shards=2,
                               videos=max(1, 2 * a.frame_batch), seed=0, frames=tuple(a.frames))
        for level, batch in (("video", a.video_batch), ("frame", a.frame_batch)):
            files = find_tfrecords(Path(tmp) / level / "train*.tfrecord")
            rate, n = reader_rate(files, level, batch, a.rounds)
            rows.append({"what": f"reader, {level} level", "batch": batch, "examples_s": rate,
                         "records": n})
            batch_x, batch_y = next(iter(YouTube8MStream(files, level, batch)))
            models = VIDEO_MODELS if level == "video" else FRAME_MODELS
            for name, kw in models.items():
                if level == "video":
                    model = make_model("yt8m-video", batch_x.shape[1], 3862, **kw)
                else:
                    extra = dict(cluster_size=256, hidden_size=64) if a.quick else {}
                    model = make_model("yt8m-frame", batch_x[0].numel(), 3862,
                                       input_shape=tuple(batch_x.shape[1:]), **kw, **extra)
                params = sum(p.numel() for p in model.parameters())
                rate = train_rate(model, batch_x, batch_y, a.steps)
                rows.append({"what": f"training, {name}", "batch": batch, "examples_s": rate,
                             "params": params})
    for r in rows:
        r["epoch_h"] = TRAIN_VIDEOS_2018 / r["examples_s"] / 3600
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version(), "machine": platform.machine(),
            "git": git_hash(Path(__file__).parent), "quick": a.quick,
            "train_videos": TRAIN_VIDEOS_2018, "frames": list(a.frames)}
    lines = [f"# YouTube-8M throughput ({'quick' if a.quick else 'full'}; torch "
             f"{meta['torch']}, {meta['threads']} thread(s), CPU)", "",
             f"Epoch time: {TRAIN_VIDEOS_2018:,} training videos (2018 release) at the measured "
             "rate; a step needs both the reader and training, so an epoch takes at least the "
             "longer of the two (reading can run in DataLoader workers, `data.workers`).", "",
             "| what | batch | params | examples/s | epoch (h) |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['what']} | {r['batch']} | {r.get('params', 0):,} | "
                     f"{r['examples_s']:,.1f} | {r['epoch_h']:,.2f} |")
    md = "\n".join(lines) + "\n"
    print(md)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "youtube8m.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (out / "youtube8m.md").write_text(md)
    with open(out / "youtube8m.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["what", "batch", "params", "records", "examples_s",
                                          "epoch_h"])
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
