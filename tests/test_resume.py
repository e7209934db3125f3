"""Runs survive being killed: ``compactnn train --resume`` and ``reproduce`` continue an
interrupted run to the same final weights and metrics as an uninterrupted one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from compactnn.cli import main
from compactnn.train import load_checkpoint

ARGS = ["train", "--model", "dcnn", "--width", "256", "--depth", "2", "--dropout", "0.1",
        "--dataset", "digits", "--epochs", "3", "--batch-size", "32", "--checkpoint-every", "10",
        "--no-progress"]
#: the child: the same CLI, each step slowed by 40 ms so that the kill lands mid-run
CHILD = """
import sys, time
from compactnn.train import callbacks
slow = callbacks.MetricsWriter.on_step_end
def on_step_end(self, state):
    time.sleep(0.04)
    slow(self, state)
callbacks.MetricsWriter.on_step_end = on_step_end
from compactnn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _only_run(root: Path) -> Path:
    (run,) = root.iterdir()
    return run


def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path, capsys):
    assert main(ARGS + ["--runs-dir", str(tmp_path / "whole")]) == 0
    whole = _only_run(tmp_path / "whole")

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, "-c", CHILD, *ARGS, "--runs-dir",
                          str(tmp_path / "killed")], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    deadline, step = time.monotonic() + 120, 0
    while step < 50 and time.monotonic() < deadline and p.poll() is None:  # mid epoch 2
        time.sleep(0.05)
        ckpts = list((tmp_path / "killed").glob("*/checkpoint.pt"))
        try:
            step = load_checkpoint(ckpts[0])["step"] if ckpts else 0
        except (ValueError, FileNotFoundError):  # replaced while reading: try again
            step = 0
    assert p.poll() is None, f"the run ended before it could be killed: {p.stderr.read()}"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    killed = _only_run(tmp_path / "killed")
    at = load_checkpoint(killed / "checkpoint.pt")
    assert at["batch"] and at["epoch"] < 3  # killed in the middle of an epoch
    assert "final" not in json.loads((killed / "metrics.json").read_text())

    capsys.readouterr()
    assert main(["train", "--resume", str(killed), "--no-progress"]) == 0
    final = json.loads((killed / "metrics.json").read_text())
    assert final["final"] == json.loads((whole / "metrics.json").read_text())["final"]
    a, b = (load_checkpoint(r / "checkpoint.pt")["model"] for r in (whole, killed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bitwise


def test_resume_falls_back_to_the_previous_checkpoint_and_refuses_other_flags(tmp_path,
                                                                              capsys):
    short = [a if a != "3" else "1" for a in ARGS]  # one epoch
    assert main(short + ["--runs-dir", str(tmp_path)]) == 0
    run = _only_run(tmp_path)
    good = load_checkpoint(run / "checkpoint.prev.pt")
    (run / "checkpoint.pt").write_bytes(b"torn")  # a crash while writing
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "checkpoint.pt: truncated or not a PyTorch checkpoint; resuming from" in out
    assert load_checkpoint(run / "checkpoint.pt")["step"] >= good["step"]
    assert main(["train", "--resume", str(run), "--epochs", "5"]) == 2
    assert "drop --epochs" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nope")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_reproduce_continues_an_unfinished_run_instead_of_restarting_it(tmp_path, capsys):
    args = ["reproduce", "nonlinearity", "--quick", "--dataset", "digits", "--limit-train",
            "64", "--runs-dir", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    res = tmp_path / "quick-results" / "nonlinearity" / "results.json"
    first = json.loads(res.read_text())["rows"]
    run = tmp_path / "nonlinearity" / first[0]["name"].replace("/", "_") / "seed0"
    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["final"]  # as a run killed after its last checkpoint leaves it
    (run / "metrics.json").write_text(json.dumps(metrics))
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("resuming the interrupted run") == 1 and "rerunning" not in out
    assert [r["test"] for r in json.loads(res.read_text())["rows"]] == [r["test"] for r in first]


def test_torchrun_two_processes_train_as_one_with_the_same_global_batch(tmp_path):
    """`torchrun --nproc_per_node 2 -m compactnn train`: DDP over gloo, each rank a share of
    every global batch (51 does not divide the 1,347 examples), metrics reduced, only rank 0
    writing — the same run folder contents as one process, to float rounding."""
    args = ["train", "--model", "dcnn", "--depth", "2", "--width", "128", "--dataset", "digits",
            "--epochs", "2", "--batch-size", "51", "--checkpoint-every", "10", "--no-progress"]
    assert main(args + ["--runs-dir", str(tmp_path / "one")]) == 0
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK")}
    failures = []
    for _ in range(2):  # one retry: about 1 launch in 30 dies in gloo's teardown at exit
        shutil.rmtree(tmp_path / "two", ignore_errors=True)
        out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                              "--nproc_per_node", "2", "-m", "compactnn", *args, "--runs-dir",
                              str(tmp_path / "two")], env=env, capture_output=True, text=True,
                             timeout=300)
        if out.returncode == 0:
            break
        failures.append(out.stderr[-1500:])
    assert out.returncode == 0, "\n---\n".join(failures)
    assert out.stdout.count("run written to") == 1  # rank 0 only
    one, two = _only_run(tmp_path / "one"), _only_run(tmp_path / "two")
    m1, m2 = (json.loads((r / "metrics.json").read_text())["final"] for r in (one, two))
    assert m1.keys() == m2.keys()
    for k in m1:  # accuracies: the same predictions; losses to float rounding
        assert abs(m1[k] - m2[k]) < (1e-9 if k.endswith("acc") else 1e-5), (k, m1[k], m2[k])
    w1, w2 = (load_checkpoint(r / "checkpoint.pt")["model"] for r in (one, two))
    assert w1.keys() == w2.keys()  # saved without DDP's "module." prefix
    worst = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    assert worst < 1e-5, worst
