import json

import pytest

from compactnn.cli import main
from compactnn.experiments.config import RunConfig, apply_overrides, parse_value
from compactnn.experiments.paper import EXPERIMENTS
from compactnn.experiments.runner import aggregate, markdown_table
from compactnn.train import TrainConfig


def test_run_config_toml_round_trip_and_overrides():
    cfg = RunConfig(name="x", model="mlp",
                    model_kwargs={"layer": "lowrank", "depth": 2, "layer_kwargs": {"rank": 4},
                                  "width": None},
                    train=TrainConfig(epochs=3, schedule="paper", grad_clip=1.0))
    assert RunConfig.from_toml(cfg.to_toml()) == cfg
    new = cfg.with_overrides(["train.epochs=7", "model_kwargs.layer_kwargs.rank=8",
                              "model_kwargs.batchnorm=true", "dataset=digits"])
    assert new.train.epochs == 7 and new.model_kwargs["layer_kwargs"]["rank"] == 8
    assert new.model_kwargs["batchnorm"] is True and new.dataset == "digits"
    with pytest.raises(ValueError, match="unknown key"):
        cfg.with_overrides(["train.epoch=3"])
    with pytest.raises(ValueError, match="no section"):
        cfg.with_overrides(["optim.lr=3"])
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides({}, ["oops"])
    with pytest.raises(ValueError, match="TrainConfig"):
        cfg.with_overrides(["train.lr=-1"])
    with pytest.raises(ValueError, match="invalid TOML"):
        RunConfig.from_toml("name = ")
    with pytest.raises(ValueError, match="unknown run-config keys"):
        RunConfig.from_dict({"name": "a", "modle": "dcnn"})
    assert [parse_value(v) for v in ("3", "0.5", "true", "none", "[1, 2]", "relu")] == [
        3, 0.5, True, None, [1, 2], "relu"]


def test_aggregate_and_table():
    rows = [{"config": "a", "num_params": 10, "test_acc": 0.5, "diverged": False},
            {"config": "a", "num_params": 10, "test_acc": 0.7, "diverged": False},
            {"config": "b", "num_params": 20, "test_acc": None, "diverged": True}]
    agg = {a["config"]: a for a in aggregate(rows)}
    assert agg["a"]["mean"] == pytest.approx(0.6) and agg["a"]["std"] == pytest.approx(0.1414, 1e-3)
    assert agg["b"]["mean"] is None and agg["b"]["diverged"] == 1
    md = markdown_table(list(agg.values()), {"a": 0.55})
    assert "0.6000 ± 0.1414" in md and "diverged" in md and "0.550" in md


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_runs_quick_and_resumes(name, tmp_path, capsys):
    args = ["reproduce", name, "--quick", "--runs-dir", str(tmp_path / "runs"),
            "--results-dir", str(tmp_path / "results"), "--no-progress"]
    assert main(args) == 0
    page = (tmp_path / "results" / name / "README.md").read_text()
    assert "quick" in page and "![" in page
    assert list((tmp_path / "results" / name).glob("*.png"))
    res = json.loads((tmp_path / "results" / name / "results.json").read_text())
    if "rows" in res:  # training experiments: every run has a run directory, and resume works
        for row in res["rows"]:
            run = tmp_path / "runs" / name / row["config"].replace("/", "_") / "seed0"
            assert (run / "config.json").is_file()
        capsys.readouterr()
        mtimes = {p: p.stat().st_mtime for p in (tmp_path / "runs").rglob("metrics.json")}
        assert main(args) == 0  # second call: everything is finished, nothing retrains
        assert {p: p.stat().st_mtime for p in mtimes} == mtimes
    assert main(["report", "--results-dir", str(tmp_path / "results")]) == 0
    assert name in (tmp_path / "results" / "README.md").read_text()


def test_unknown_experiment(capsys):
    assert main(["reproduce", "nope", "--quick"]) == 2
    assert "unknown experiment" in capsys.readouterr().err
