"""The compress-mlp experiment: its quick mode end to end, and the pipeline of one cell."""

import json

import pytest
import torch

from compactnn.cli import main
from compactnn.compress import evaluate_model
from compactnn.data import load_dataset
from compactnn.experiments.compress_mlp import (
    CELLS,
    STAGES,
    _dense_mlp,
    _label,
    _train_cfg,
    run_cell,
)
from compactnn.layers import Circulant

pytestmark = pytest.mark.usefixtures("one_thread")


def test_quick_mode_writes_the_page_outside_results(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "compress-mlp", "--quick", "--runs-dir", "runs",
                 "--no-progress"]) == 0
    assert not (tmp_path / "results").exists()  # a quick run never writes into results/
    out = tmp_path / "runs" / "quick-results" / "compress-mlp"
    page = (out / "README.md").read_text()
    assert "quick" in page and "![" in page and "not reported" in page
    res = json.loads((out / "results.json").read_text())
    assert "rows" not in res and res["quick"] and res["dataset"] == "digits"
    assert set(res["table"]) == {_label(f, r) for f, r in CELLS}
    assert len(res["runs"]) == len(CELLS)  # one seed in quick mode
    for label, t in res["table"].items():
        assert f"| {label} | {t['hidden_params']:,} |" in page
        for stage in STAGES:
            assert t[stage]["n_seeds"] == 1
            assert t[stage]["mean"] is None or 0.0 <= t[stage]["mean"] <= 1.0
    for r in res["runs"]:  # the low-rank/hashed sizes meet their targets layer by layer
        for lay in r["report"]["layers"]:
            if r["ratio"] is not None:
                assert lay["old_params"] / lay["new_params"] >= r["ratio"]
    # at quick sizes lowrank cannot reach 50×: the row must say its layers stayed dense
    assert set(res["table"]["lowrank ≥50×"]["kept"]) == {"net.0", "net.2"}
    assert "net.0 kept dense †" in page and "† Not compressed" in page
    assert not res["table"]["circulant"]["kept"]
    assert (out / "compress_mlp.png").stat().st_size > 0
    # a custom experiment: settings it would ignore are refused
    assert main(["reproduce", "compress-mlp", "--quick", "--seeds", "0", "1",
                 "--runs-dir", "runs"]) == 2


def test_a_structure_that_holds_the_trained_weights_loses_nothing():
    """Hidden weights that are circulant: the circulant fit is exact, so the compressed
    model's accuracy is the dense model's, and every stage runs."""
    data = load_dataset("digits")
    torch.manual_seed(0)
    dense = _dense_mlp(data, 64).eval()
    with torch.no_grad():
        for i in (0, 2):
            dense.net[i].weight.copy_(Circulant(64, 64).to_dense())
    r = run_cell("circulant", None, dense, data, width=64, dense_epochs=1, ft_epochs=1, seed=0)
    assert [lay["name"] for lay in r["report"]["layers"]] == ["net.0", "net.2"]
    assert max(lay["rel_error"] for lay in r["report"]["layers"]) < 1e-6
    assert r["compressed"] == evaluate_model(dense, data, _train_cfg(1))["acc"]
    assert r["hidden_params"] == 2 * (64 + 64)
    assert all(0.0 <= r[s] <= 1.0 for s in STAGES)
