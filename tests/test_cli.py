import json

from compactnn.cli import main


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "dc " in out and "max(in,out) + 2·out" in out and "fashion-mnist" in out


def test_train_writes_run(tmp_path, capsys):
    rc = main(["train", "--dataset", "digits", "--depth", "1", "--epochs", "1", "--width", "64",
               "--runs-dir", str(tmp_path), "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "trainable parameters" in out and "final test accuracy" in out
    run = next(tmp_path.iterdir())
    assert json.loads((run / "config.json").read_text())["model"]["depth"] == 1


def test_train_other_family(tmp_path):
    assert main(["train", "--model", "mlp", "--layer", "circulant_projection", "--dataset",
                 "digits", "--epochs", "1", "--runs-dir", str(tmp_path), "--no-progress"]) == 0


def test_compare_quick(tmp_path, capsys):
    assert main(["compare", "--quick", "--dataset", "digits", "--runs-dir", str(tmp_path),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| DCNN" in out and "% of dense" in out
    res = json.loads(next(tmp_path.glob("*/results.json")).read_text())
    assert len(res["rows"]) == 2 and res["rows"][1]["num_params"] < res["rows"][0]["num_params"]


def test_bad_arguments_give_clean_errors(tmp_path, capsys):
    assert main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--epochs", "1",
                 "--runs-dir", str(tmp_path)]) == 2
    assert "IDX files not found" in capsys.readouterr().err
    assert main(["train", "--dataset", "digits", "--lr", "-1", "--runs-dir", str(tmp_path)]) == 2
    assert "lr must be" in capsys.readouterr().err
    assert main(["train", "--dataset", "digits", "--model", "dcnn", "--layer", "dense",
                 "--runs-dir", str(tmp_path)]) == 2


def test_train_layer_kwargs_and_shl(tmp_path, capsys):
    assert main(["train", "--model", "shl", "--layer", "lowrank", "--layer-kw", "rank=3",
                 "--dataset", "digits", "--epochs", "1", "--runs-dir", str(tmp_path),
                 "--no-progress"]) == 0
    run = next(tmp_path.iterdir())
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["layer_kwargs"] == {"rank": 3} and cfg["model"]["depth"] == 1
    assert main(["train", "--layer-kw", "rank", "--dataset", "digits",
                 "--runs-dir", str(tmp_path)]) == 2
    assert "key=value" in capsys.readouterr().err


def test_families_quick(tmp_path, capsys):
    assert main(["families", "--quick", "--dataset", "digits", "--families", "dc,lowrank,hashed",
                 "--out-dir", str(tmp_path / "res"), "--runs-dir", str(tmp_path / "runs"),
                 "--no-progress"]) == 0
    res = json.loads((tmp_path / "res" / "families.json").read_text())
    assert sorted(r["family"] for r in res["rows"]) == ["dc", "hashed", "lowrank"]
    dc = next(r for r in res["rows"] if r["family"] == "dc")
    assert dc["hidden_params"] == 64 + 2 * 64  # one 64x64 DC layer
    assert "| family |" in (tmp_path / "res" / "families.md").read_text()
    assert main(["families", "--families", "nope", "--dataset", "digits"]) == 2
