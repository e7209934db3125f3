"""The CLI jobs ``families`` and ``compare``: where they write, what they train, what they
report."""

import dataclasses
import json

import pytest
import torch

from compactnn.cli import main
from compactnn.data import load_dataset
from compactnn.experiments import compare, families


def _families_base(**model):
    base = families.base_config(quick=True).replace(data={"name": "digits", "limit_train": 300})
    return base.replace(model=model) if model else base


def test_quick_families_never_overwrite_the_committed_results(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # results/families is relative to the working directory
    runs = tmp_path / "runs"
    for out_dir in (None, "results/families"):  # the CLI passes its default explicitly
        families.run_families(_families_base(), families=["dc"], quick=True, out_dir=out_dir,
                              runs_dir=runs, progress=False, log=lambda s: None)
        assert not (tmp_path / "results").exists()
        res = json.loads((runs / "quick-results" / "families" / "families.json").read_text())
        assert res["quick"] and [r["family"] for r in res["rows"]] == ["dc"]
    elsewhere = tmp_path / "mine"  # an explicit other folder is honoured, quick or not
    families.run_families(_families_base(), families=["dc"], quick=True, out_dir=elsewhere,
                          runs_dir=runs, progress=False, log=lambda s: None)
    assert (elsewhere / "families.md").is_file()


def test_families_merge_the_users_layer_kwargs_and_report_what_ran(tmp_path):
    base = _families_base(activation="tanh", layer_kwargs={"bias": False})
    rows = families.run_families(base, families=["hashed", "lowrank"], out_dir=tmp_path / "o",
                                 runs_dir=tmp_path / "runs", progress=False, log=lambda s: None)
    by = {r["family"]: r for r in rows}
    # the family's budget first, the user's kwargs on top
    assert by["hashed"]["layer_kwargs"] == {"compression": 1 / 64, "bias": False}
    assert by["lowrank"]["layer_kwargs"] == {"rank": 8, "bias": False}
    assert by["lowrank"]["hidden_params"] == 8 * (64 + 64)  # no bias: the user's setting ran
    res = json.loads((tmp_path / "o" / "families.json").read_text())
    for row in res["rows"]:  # the resolved config of each run
        cfg = row["config"]
        assert cfg["data"]["name"] == "digits" and cfg["model"]["layer"] == row["family"]
        assert cfg["model"]["layer_kwargs"] == row["layer_kwargs"]
        assert cfg["model"]["activation"] == "tanh"
    header = (tmp_path / "o" / "families.md").read_text().splitlines()[0]
    assert "+ tanh" in header and "relu" not in header.lower()

    lowrank_only = _families_base(layer_kwargs={"rank": 3})
    rows = families.run_families(lowrank_only, families=["lowrank"], out_dir=tmp_path / "o2",
                                 runs_dir=tmp_path / "runs", progress=False, log=lambda s: None)
    assert rows[0]["layer_kwargs"] == {"rank": 3} and rows[0]["hidden_params"] == 3 * 128 + 64
    with pytest.raises(ValueError, match="'rank' is not an argument of family 'dc'"):
        families.run_families(lowrank_only, families=["lowrank", "dc"], out_dir=tmp_path / "o3",
                              runs_dir=tmp_path / "refused", progress=False)
    assert not (tmp_path / "refused").exists() and not (tmp_path / "o3").exists()


def test_compare_refuses_model_overrides(tmp_path, capsys):
    base = compare.base_config(quick=True).replace(model={"width": 16})
    with pytest.raises(ValueError, match=r"compare trains fixed models \(Dense MLP.*DCNN.*\); "
                                         r"model settings cannot be overridden .*model\.width=16"
                                         r".*use compactnn train"):
        compare.run_compare(base, quick=True, runs_dir=tmp_path, progress=False)
    assert main(["compare", "--quick", "--dataset", "digits", "--set", "model.width=16",
                 "--runs-dir", str(tmp_path), "--no-progress"]) == 2
    assert "model settings cannot be overridden" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.fixture
def regression_digits(monkeypatch):
    """Digits as a regression problem (one-hot targets): a task whose metric is not ``acc``."""
    d = load_dataset("digits", limit_train=200)
    eye = torch.eye(10)
    data = dataclasses.replace(d, y_train=eye[d.y_train], y_test=eye[d.y_test],
                               task="regression")
    for module in (families, compare):
        monkeypatch.setattr(module, "load_data", lambda cfg: data)
    return data


def test_jobs_report_the_tasks_primary_metric(regression_digits, tmp_path):
    rows = families.run_families(_families_base(), families=["dc", "lowrank"],
                                 out_dir=tmp_path / "f", runs_dir=tmp_path / "runs",
                                 progress=False, log=lambda s: None)
    assert all(r["metric"] == "mse" and "test_acc" not in r for r in rows)
    assert rows[0]["test_mse"] <= rows[1]["test_mse"]  # lower is better: best first
    assert "| test mse |" in (tmp_path / "f" / "families.md").read_text()

    base = compare.base_config(quick=True).replace(train={"epochs": 1})
    res = compare.run_compare(base, quick=True, runs_dir=tmp_path / "c", progress=False,
                              log=lambda s: None)
    assert res["metric"] == "mse" and all("test_mse" in r for r in res["rows"])
    table = compare.format_table(res["rows"])
    assert "| test mse |" in table and "pts" not in table
