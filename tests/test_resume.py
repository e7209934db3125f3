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


def _wait_for_checkpoint_step(p: subprocess.Popen, root: Path, step: int) -> None:
    """Wait (≤ 120 s) until the run under ``root`` has checkpointed step ``step`` or later,
    and check that it is still running (so that a kill lands mid-run)."""
    deadline, done = time.monotonic() + 120, 0
    while done < step and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
        ckpts = list(root.glob("*/checkpoint.pt"))
        try:
            done = load_checkpoint(ckpts[0])["step"] if ckpts else 0
        except (ValueError, FileNotFoundError):  # replaced while reading: try again
            done = 0
    assert p.poll() is None, f"the run ended before it could be killed: {p.stderr.read()}"


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
    _wait_for_checkpoint_step(p, tmp_path / "killed", 50)  # mid epoch 2
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


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
            "2"]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _torchrun(args: list[str], fresh: Path | None = None) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node 2 -m compactnn ARGS`` (or a script: ARGS[0] ending .py),
    retried once — about 1 launch in 30 dies in gloo's teardown at exit; ``fresh`` is removed
    before each try. The first failure's stderr is kept."""
    failures = []
    for _ in range(2):
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)
        cmd = TORCHRUN + (args if args[0].endswith(".py") else ["-m", "compactnn", *args])
        out = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
        if out.returncode == 0:
            return out
        failures.append(out.stderr[-1500:])
    raise AssertionError("\n---\n".join(failures))


def test_torchrun_two_processes_train_as_one_with_the_same_global_batch(tmp_path):
    """`torchrun --nproc_per_node 2 -m compactnn train`: DDP over gloo, each rank a share of
    every global batch (51 does not divide the 1,347 examples), metrics reduced, only rank 0
    writing — the same run folder contents as one process, to float rounding."""
    args = ["train", "--model", "dcnn", "--depth", "2", "--width", "128", "--dataset", "digits",
            "--epochs", "2", "--batch-size", "51", "--checkpoint-every", "10", "--no-progress"]
    assert main(args + ["--runs-dir", str(tmp_path / "one")]) == 0
    out = _torchrun(args + ["--runs-dir", str(tmp_path / "two")], fresh=tmp_path / "two")
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


def test_a_killed_torchrun_run_resumes_under_torchrun_to_the_uninterrupted_result(tmp_path):
    """SIGKILL to torchrun and both ranks mid-epoch; `torchrun … train --resume` continues from
    the checkpoint (every rank's RNG and meter sums in it) to the uninterrupted 2-process run's
    final metrics and weights, bitwise (dropout on shares of unequal size: the ranks' RNG
    streams differ)."""
    args = ["train", "--model", "dcnn", "--width", "128", "--depth", "2", "--dropout", "0.1",
            "--dataset", "digits", "--epochs", "2", "--batch-size", "51",
            "--checkpoint-every", "5", "--no-progress"]
    _torchrun(args + ["--runs-dir", str(tmp_path / "whole")], fresh=tmp_path / "whole")
    whole = _only_run(tmp_path / "whole")
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    p = subprocess.Popen([*TORCHRUN, str(child), *args, "--runs-dir", str(tmp_path / "killed")],
                         env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    _wait_for_checkpoint_step(p, tmp_path / "killed", 30)  # mid epoch 2
    os.killpg(p.pid, signal.SIGKILL)  # torchrun and its two workers at once
    p.wait(timeout=30)
    killed = _only_run(tmp_path / "killed")
    at = load_checkpoint(killed / "checkpoint.pt")
    assert at["batch"] and at["world_size"] == 2 and len(at["ranks"]) == 2
    assert "final" not in json.loads((killed / "metrics.json").read_text())

    _torchrun(["train", "--resume", str(killed), "--no-progress"])
    final = json.loads((killed / "metrics.json").read_text())
    assert final["final"] == json.loads((whole / "metrics.json").read_text())["final"]
    a, b = (load_checkpoint(r / "checkpoint.pt")["model"] for r in (whole, killed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bitwise


def test_reproduce_and_compare_under_torchrun_match_one_process(tmp_path, capsys):
    """`reproduce` and `compare` under torchrun: every run data-parallel, rank 0 deciding,
    logging and writing; the tables are one process's (accuracies equal)."""
    rep = ["reproduce", "nonlinearity", "--quick", "--dataset", "digits", "--no-progress"]
    cmp = ["compare", "--quick", "--dataset", "digits", "--no-progress"]
    for args in (rep, cmp):
        assert main(args + ["--runs-dir", str(tmp_path / "one")]) == 0
    capsys.readouterr()
    out = _torchrun(rep + ["--runs-dir", str(tmp_path / "two")], fresh=tmp_path / "two")
    assert out.stdout.count("== nonlinearity ==") == 1  # rank 0 only
    one, two = (json.loads((tmp_path / r / "quick-results/nonlinearity/results.json")
                           .read_text())["rows"] for r in ("one", "two"))
    assert [(r["name"], r["num_params"], r["test"]) for r in one] == [
        (r["name"], r["num_params"], r["test"]) for r in two]
    again = _torchrun(rep + ["--runs-dir", str(tmp_path / "two")])  # finished: reused
    assert "resuming" not in again.stdout and "rerunning" not in again.stdout

    out = _torchrun(cmp + ["--runs-dir", str(tmp_path / "cmp")], fresh=tmp_path / "cmp")
    (page,) = (tmp_path / "cmp").glob("*-compare/results.json")
    (ref,) = (tmp_path / "one").glob("*-compare/results.json")
    rows = [json.loads(p.read_text())["rows"] for p in (ref, page)]
    assert [r["test_acc"] for r in rows[0]] == [r["test_acc"] for r in rows[1]]
    assert len(list(page.parent.iterdir())) == 4  # two run folders + the table, once
