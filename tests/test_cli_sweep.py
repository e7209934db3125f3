"""Every subcommand, and every choice of every enumerated option, at a tiny budget: each ends
with exit status 0, or 2 and a one-line error on stderr — never a traceback or an internal
error. The choices are read from the parser itself, so a new option or registered name is
swept by default."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from compactnn.cli import build_parser, main
from compactnn.data import write_idx
from compactnn.data.cifar import write_cifar10_batch
from compactnn.data.datasets import SYSTEM_DIRS

#: a tiny budget on embedded data, per command (the swept option replaces its own default)
TINY = {
    "train": ["--model", "mlp", "--dataset", "digits", "--epochs", "1", "--limit-train", "64",
              "--batch-size", "32", "--no-progress"],
    "compare": ["--quick", "--dataset", "digits", "--limit-train", "64", "--no-progress"],
    "families": ["--quick", "--dataset", "digits", "--limit-train", "64", "--families",
                 "dense,dc", "--no-progress"],
    "reproduce": ["nonlinearity", "--quick", "--limit-train", "64", "--no-progress"],
    "list": [],
    "report": [],
    "compress": [],  # built by _argv around a tiny trained run
}
#: commands whose --quick budget subsamples the training set in memory, which a streamed data
#: set (YouTube-8M) refuses with one line
SUBSAMPLING = {"compare", "families", "reproduce"}
#: options that take a path or need a second run: covered by the tests further down
SKIP = {"--config", "--teacher", "--runs-dir", "--results-dir", "--out-dir", "--data-dir"}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _cases() -> list[tuple[str, list[str]]]:
    cases = []
    for cmd, sub in _subparsers(build_parser()).items():
        cases.append((cmd, []))
        for action in sub._actions:
            flag = action.option_strings[0] if action.option_strings else None
            if action.choices is not None and flag not in SKIP and flag is not None:
                cases += [(cmd, [flag, str(choice)]) for choice in action.choices]
    # reproduce's positional name: every registered experiment runs quick end to end (status 0)
    # in tests/experiments/test_experiments.py::test_every_experiment_runs_quick_and_resumes
    return cases


def _argv(cmd: str, extra: list[str], tmp: Path) -> list[str]:
    base = list(TINY[cmd])
    for flag in extra[:1]:  # the swept option replaces the tiny budget's own value
        if flag in base:
            i = base.index(flag)
            del base[i:i + 2]
    if cmd == "report":
        (tmp / "results").mkdir()
        return [cmd, "--results-dir", str(tmp / "results")]
    if cmd == "compress":
        dense = ["--model", "dense-mlp", "--width", "64", *TINY["train"][2:]]  # nn.Linear layers
        assert main(["train", *dense, "--runs-dir", str(tmp / "trained")]) == 0
        (run,) = (tmp / "trained").iterdir()
        return [cmd, str(run), "--family", "circulant", "--out", str(tmp / "out"),
                "--no-progress"]
    if _streamed(extra) and "--limit-train" in base:  # an epoch of 2 steps instead
        i = base.index("--limit-train")
        base[i:i + 2] = ["--set", "train.steps_per_epoch=2"]
    runs = [] if cmd == "list" else ["--runs-dir", str(tmp / "runs")]
    return [cmd, *base, *extra, *runs]


def _streamed(extra: list[str]) -> bool:
    return extra[:1] == ["--dataset"] and extra[1].startswith("youtube8m")


def _check_outcome(rc: int, err: str) -> None:
    assert "Traceback" not in err and "internal error" not in err, err
    assert rc in (0, 2), (rc, err)
    if rc == 2:
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert lines and "error:" in lines[-1], err
        if lines[-1].startswith("compactnn: error:"):  # ours: exactly one line
            assert len([ln for ln in lines if "error" in ln]) == 1, err


CASES = _cases()


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    """Small MNIST (IDX) and CIFAR-10 (python batches) files in the real on-disk formats,
    under a ``$COMPACTNN_DATA`` root, so that every ``--dataset`` choice can train here."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    (root / "mnist").mkdir()
    for split, n in (("train", 96), ("t10k", 32)):
        write_idx(root / "mnist" / f"{split}-images-idx3-ubyte.gz",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / "mnist" / f"{split}-labels-idx1-ubyte.gz",
                  rng.integers(0, 10, n, dtype=np.uint8))
    try:  # YouTube-8M TFRecords, when the youtube8m extra is installed
        from compactnn.data.youtube8m import write_synthetic_shards
        for level in ("video", "frame"):
            d = root / "youtube8m" / level
            write_synthetic_shards(d, level, "train", shards=2, videos=8, seed=0)
            write_synthetic_shards(d, level, "validate", shards=1, videos=4, seed=1)
    except ImportError:
        pass
    (root / "cifar10").mkdir()
    for batch in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar10_batch(root / "cifar10" / batch, rng.integers(0, 256, (20, 3072)),
                            rng.integers(0, 10, 20))
    return root


@pytest.fixture(autouse=True)
def _data_root(small_data, monkeypatch):
    monkeypatch.setenv("COMPACTNN_DATA", str(small_data))
    monkeypatch.setitem(SYSTEM_DIRS, "mnist", str(small_data / "absent"))  # ours, not the OS's


@pytest.mark.parametrize("cmd,extra", CASES, ids=[f"{c}{''.join(' ' + e for e in x)}"
                                                  for c, x in CASES])
def test_every_command_and_choice_exits_0_or_2_with_one_line(cmd, extra, tmp_path, capsys):
    try:
        rc = main(_argv(cmd, extra, tmp_path))
    except SystemExit as e:  # argparse: usage + one error line, status 2
        rc = e.code
    err = capsys.readouterr().err
    _check_outcome(rc, err)
    if cmd in SUBSAMPLING and _streamed(extra):
        assert rc == 2 and "streamed from its files" in err, err
        return
    assert rc == 0, err  # every choice works (MNIST, CIFAR-10, YouTube-8M: the small files below)


def test_the_sweep_covers_every_registered_name():
    flat = {tuple(x) for _, x in CASES}
    from compactnn.registry import available
    for flag, kind in (("--layer", "linear"), ("--model", "model"), ("--dataset", "dataset"),
                       ("--optimizer", "optimizer"), ("--schedule", "schedule"),
                       ("--activation", "activation")):
        assert {(flag, n) for n in available(kind)} <= flat, flag


@pytest.mark.parametrize("argv,needle", [
    (["train", "--device", "cuda:7"], "CUDA device"),
    (["train", "--device", "bogus"], "train.device 'bogus'"),
    (["train", "--model", "mlp", "--layer", "lowrank", "--layer-kw", "rnak=3"],
     "layer 'lowrank' does not take 'rnak' (it takes: bias, init, rank)"),
    (["train", "--set", "model.layer_kwargs.rnak=3", "--model", "mlp", "--layer", "lowrank"],
     "does not take 'rnak'"),
    (["train", "--set", "train.epochz=3"], "epochz"),
    (["train", "--limit-train", "-5"], "limit_train"),
    (["train", "--config", "/nonexistent/config.toml"], "/nonexistent/config.toml"),
    (["train", "--runs-dir", "/proc/compactnn-cannot-write-here"], "--runs-dir"),
    (["train", "--lr", "1e39"], "at most 1e30"),  # overflowed float32 in the optimizer
    (["train", "--model", "mlp", "--layer-kw", "bias=maybe"], "bias must be true or false"),
    (["families", "--quick", "--dataset", "digits", "--families", "dc", "--width", "0"],
     "width"),
    (["reproduce", "compression", "--quick", "--seeds", "0", "0"], "distinct"),
    (["reproduce", "compression", "--quick", "--seeds", "-1"], "non-negative"),
    (["reproduce", "nope"], "nope"),
    (["report", "--results-dir", "/nonexistent"], "/nonexistent"),
])
def test_bad_input_is_one_line_naming_the_problem(argv, needle, tmp_path, capsys):
    if "--runs-dir" not in argv and argv[0] != "report":
        argv = argv + ["--runs-dir", str(tmp_path)]
    if argv[0] == "train" and "--dataset" not in argv:
        argv += ["--dataset", "digits", "--epochs", "1", "--no-progress"]
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    _check_outcome(rc, err)
    assert rc == 2 and needle in err, err


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "compactnn.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_a_teacher_whose_checkpoint_does_not_fit_its_config_is_one_line(tmp_path, capsys):
    assert main(["train", "--model", "mlp", "--dataset", "digits", "--epochs", "1",
                 "--runs-dir", str(tmp_path / "t"), "--no-progress"]) == 0
    teacher = next((tmp_path / "t").iterdir())
    cfg = (teacher / "config.toml").read_text()
    (teacher / "config.toml").write_text(cfg.replace("width = 64", "width = 32"))
    capsys.readouterr()
    rc = main(["train", "--model", "dense-mlp", "--dataset", "digits", "--epochs", "1",
               "--teacher", str(teacher), "--runs-dir", str(tmp_path / "s"), "--no-progress"])
    err = capsys.readouterr().err
    _check_outcome(rc, err)
    assert rc == 2 and "does not fit the model its config.toml describes" in err, err
    (teacher / "checkpoint.pt").write_bytes((teacher / "checkpoint.pt").read_bytes()[:500])
    rc = main(["train", "--model", "dense-mlp", "--dataset", "digits", "--epochs", "1",
               "--teacher", str(teacher), "--runs-dir", str(tmp_path / "s"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "checkpoint.pt: truncated" in err.replace(" ", " "), err


@pytest.mark.parametrize("where,needle", [
    ("compactnn.runs.fit", "training interrupted before the first epoch ended: no checkpoint"),
    ("compactnn.runs.load_data", "compactnn: interrupted"),
])
def test_ctrl_c_before_a_checkpoint_exists_says_so(where, needle, tmp_path, capsys,
                                                   monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(where, interrupt)
    rc = main(["train", "--dataset", "digits", "--runs-dir", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_ctrl_c_is_a_short_message_naming_the_last_checkpoint(tmp_path):
    """SIGINT once the first epoch's checkpoint exists: status 2, one line naming it."""
    runs = tmp_path / "runs"
    p = _cli("train", "--model", "mlp", "--dataset", "digits", "--epochs", "100000",
             "--runs-dir", str(runs), "--no-progress")
    deadline = time.monotonic() + 120
    while not list(runs.glob("*/checkpoint.pt")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(runs.glob("*/checkpoint.pt")), "no checkpoint within 120 s"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    ckpt = next(runs.glob("*/checkpoint.pt"))
    assert f"last checkpoint: {ckpt}" in err and "(epoch " in err, err
    from compactnn.train import load_checkpoint
    assert load_checkpoint(ckpt)["epoch"] >= 1  # the file it names is a whole checkpoint
