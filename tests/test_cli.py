import json

import pytest

from compactnn.cli import main
from compactnn.config import RunConfig
from compactnn.registry import available


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "dc " in out and "max(in,out) + 2·out" in out and "fashion-mnist" in out
    for kind in ("linear", "model", "dataset", "task", "experiment"):
        assert all(name in out for name in available(kind)), kind


def test_train_writes_a_run_that_reruns_from_its_config(tmp_path, capsys):
    rc = main(["train", "--dataset", "digits", "--depth", "1", "--epochs", "1", "--width", "64",
               "--runs-dir", str(tmp_path / "a"), "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "trainable parameters" in out and "final test acc" in out
    run = next((tmp_path / "a").iterdir())
    cfg = RunConfig.load(run / "config.toml")
    assert cfg.model.args["depth"] == 1 and cfg.model.args["width"] == 64
    assert cfg.data.name == "digits"
    assert main(["train", "--config", str(run / "config.toml"), "--runs-dir",
                 str(tmp_path / "b"), "--no-progress"]) == 0
    rerun = next((tmp_path / "b").iterdir())
    first, second = (json.loads((r / "metrics.json").read_text())["final"] for r in (run, rerun))
    assert first == second


@pytest.mark.parametrize("model", available("model"))
def test_every_registered_model_trains_from_the_cli(model, tmp_path):
    assert main(["train", "--model", model, "--dataset", "digits", "--epochs", "1",
                 "--limit-train", "300", "--runs-dir", str(tmp_path), "--no-progress"]) == 0
    run = next(tmp_path.iterdir())
    assert RunConfig.load(run / "config.toml").model.name == model


def test_train_other_family_and_set(tmp_path, capsys):
    assert main(["train", "--model", "mlp", "--layer", "circulant_projection", "--dataset",
                 "digits", "--set", "train.epochs=1", "--set", "model.depth=2",
                 "--dry-run"]) == 0
    cfg = RunConfig.from_toml(capsys.readouterr().out)
    assert cfg.train.epochs == 1 and cfg.data.name == "digits"  # resolved
    assert cfg.model.args["layer"] == "circulant_projection" and cfg.model.args["depth"] == 2
    assert cfg.model.args["width"] == 64  # every argument the model would use


def test_compare_quick(tmp_path, capsys):
    assert main(["compare", "--quick", "--dataset", "digits", "--runs-dir", str(tmp_path),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| DCNN" in out and "% of dense" in out
    res = json.loads(next(tmp_path.glob("*/results.json")).read_text())
    assert len(res["rows"]) == 2 and res["rows"][1]["num_params"] < res["rows"][0]["num_params"]
    assert res["config"]["train"]["epochs"] == 2


def test_bad_arguments_give_clean_errors(tmp_path, capsys):
    def err(*argv):
        assert main(list(argv)) == 2
        return capsys.readouterr().err

    assert "IDX files not found" in err("train", "--dataset", "mnist", "--data-dir",
                                        str(tmp_path), "--epochs", "1", "--runs-dir",
                                        str(tmp_path))
    assert "lr must be" in err("train", "--dataset", "digits", "--lr", "-1")
    assert "DCNN always uses 'dc'" in err("train", "--model", "dcnn", "--layer", "dense")
    assert "'lenet' does not take 'depth'" in err("train", "--model", "lenet", "--depth", "2")
    assert "unknown key 'epoch'" in err("train", "--set", "train.epoch=2")
    assert "key=value" in err("train", "--set", "oops")
    assert "no run config" in err("train", "--config", str(tmp_path / "none.toml"))
    assert "key=value" in err("train", "--layer-kw", "rank", "--dataset", "digits")
    assert not list(tmp_path.iterdir())  # nothing was written by a refused command


def test_train_layer_kwargs_and_shl(tmp_path):
    assert main(["train", "--model", "shl", "--layer", "lowrank", "--layer-kw", "rank=3",
                 "--dataset", "digits", "--epochs", "1", "--runs-dir", str(tmp_path),
                 "--no-progress"]) == 0
    cfg = RunConfig.load(next(tmp_path.iterdir()))
    assert cfg.model.args["layer_kwargs"] == {"rank": 3}


def test_families_quick(tmp_path, capsys):
    assert main(["families", "--quick", "--dataset", "digits", "--families", "dc,lowrank,hashed",
                 "--out-dir", str(tmp_path / "res"), "--runs-dir", str(tmp_path / "runs"),
                 "--no-progress"]) == 0
    res = json.loads((tmp_path / "res" / "families.json").read_text())
    assert sorted(r["family"] for r in res["rows"]) == ["dc", "hashed", "lowrank"]
    dc = next(r for r in res["rows"] if r["family"] == "dc")
    assert dc["hidden_params"] == 64 + 2 * 64  # one 64x64 DC layer
    lowrank = next(r for r in res["rows"] if r["family"] == "lowrank")
    assert lowrank["layer_kwargs"] == {"rank": 8}  # the family's declared budget
    assert "| family |" in (tmp_path / "res" / "families.md").read_text()
    assert main(["families", "--families", "nope", "--dataset", "digits"]) == 2


@pytest.mark.parametrize("exc,rc,needle", [
    (RuntimeError("boom\nsecond line"), 1, "internal error: RuntimeError: boom … (a bug"),
    (ModuleNotFoundError("No module named 'sklearn'", name="sklearn"), 2,
     "pip install 'compactnn[experiments]'"),
    (PermissionError(13, "Permission denied", "/x/y"), 2, "error: Permission denied: /x/y"),
    (KeyError("epochs"), 1, "missing key 'epochs'"),
])
def test_every_failure_is_one_line_on_stderr(monkeypatch, capsys, exc, rc, needle):
    """The mechanism: user problems → status 2, bugs → status 1, both one line."""
    import compactnn.cli as cli

    def fail(args):
        raise exc

    monkeypatch.setattr(cli, "_cmd_list", fail)
    assert main(["list"]) == rc
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1, err
    monkeypatch.setenv("COMPACTNN_DEBUG", "1")
    if rc == 1:  # the traceback on request
        with pytest.raises(type(exc)):
            main(["list"])


def test_out_of_memory_names_the_knob(monkeypatch, capsys):
    import torch

    import compactnn.cli as cli

    def oom(args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20 GiB")

    monkeypatch.setattr(cli, "_cmd_list", oom)
    assert main(["list"]) == 2
    assert "lower train.batch_size" in capsys.readouterr().err


def test_a_missing_optional_dependency_names_the_extra(monkeypatch, capsys, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import → ModuleNotFoundError
    assert main(["train", "--dataset", "digits", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("pip install 'compactnn[experiments]'") == 1, err
    assert "for the digits data set" in err and len(err.strip().splitlines()) == 1


def test_commands_that_train_nothing_refuse_torchrun(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for command in (["list"], ["report"]):
        assert main(command) == 2
        assert "trains nothing: run it as one process" in capsys.readouterr().err


def test_experiments_that_train_nothing_refuse_torchrun_before_any_collective(monkeypatch,
                                                                               capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["reproduce", "init-variance", "--quick"]) == 2
    assert "trains no models: run it as one process" in capsys.readouterr().err
