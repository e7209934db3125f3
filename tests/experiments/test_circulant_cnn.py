"""The circulant-cnn experiment (Cheng et al. 2015, seed 002): its configs, the FC-block
costs, and quick runs on digits and on MNIST IDX files."""

import json

import numpy as np
import pytest

from compactnn.cli import main
from compactnn.data import resolve_dataset, write_idx
from compactnn.experiments.circulant_cnn import CELLS, EPOCHS, LIMIT_TRAIN, fc_costs
from compactnn.layers import get_layer_class
from compactnn.registry import get

EXP = get("experiment", "circulant-cnn")


@pytest.mark.parametrize("quick", [False, True])
def test_configs_differ_only_in_the_fc_layer(quick):
    spec, _ = resolve_dataset("fashion-mnist")
    cfgs = {c.name: c.to_dict() for c in EXP.configs(quick, spec)}
    assert list(cfgs) == [name for name, _ in CELLS] == ["dense-fc", "circulant-fc"]
    dense, circ = cfgs["dense-fc"], cfgs["circulant-fc"]
    assert dense["model"] == {"name": "lenet"}  # the plain lenet: no fc key at all
    assert circ["model"] == {"name": "lenet", "fc": "circulant_projection"}
    assert dense["train"] == circ["train"] and dense["data"] == circ["data"]
    assert dense["train"]["epochs"] == (1 if quick else EPOCHS)
    assert dense["data"]["limit_train"] == (2000 if quick else LIMIT_TRAIN)
    assert LIMIT_TRAIN is None  # the full budget trains on the whole training set
    assert EXP.seeds == (0, 1, 2)


def test_fc_costs_count_the_fc_block_and_time_it():
    costs = fc_costs([{"name": "lenet"}, {"name": "lenet", "fc": "circulant_projection"}],
                     (1, 8, 8), batch=16, repeats=2)
    dense, circ = costs
    clf = 1024 * 10 + 10
    assert dense["fc_params"] == 256 * 1024 + 1024 + clf
    cp = get_layer_class("circulant_projection")
    assert circ["fc_params"] == cp.num_params(256, 1024) + clf == 1024 + 1024 + clf
    assert dense["params"] - circ["params"] == dense["fc_params"] - circ["fc_params"]
    for c in costs:
        assert c["forward_ms"] > 0 and c["forward_backward_ms"] > 0 and c["forward_1_ms"] > 0
        assert c["repeats"] == 2 and c["batch"] == 16 and c["threads"] == 1


def test_quick_run_on_digits_reports_error_space_and_time(tmp_path):
    assert main(["reproduce", "circulant-cnn", "--quick", "--dataset", "digits",
                 "--set", "data.limit_train=300", "--runs-dir", str(tmp_path),
                 "--no-progress"]) == 0
    out = tmp_path / "quick-results" / "circulant-cnn"
    page = (out / "README.md").read_text()
    assert "| dense-fc |" in page and "| circulant-fc |" in page
    assert "Circulant FC against dense FC on test accuracy: **not settled**" in page
    assert (out / "circulant_cnn.png").is_file()
    res = json.loads((out / "results.json").read_text())
    assert {r["dataset"] for r in res["rows"]} == {"digits"} and len(res["rows"]) == 2


def test_quick_run_on_mnist_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "mnist"
    data.mkdir()
    for split, n in (("train", 200), ("t10k", 50)):
        write_idx(data / f"{split}-images-idx3-ubyte.gz",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(data / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    assert main(["reproduce", "circulant-cnn", "--quick", "--dataset", "mnist", "--data-dir",
                 str(data), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]) == 0
    res = json.loads((tmp_path / "runs" / "quick-results" / "circulant-cnn" /
                      "results.json").read_text())
    assert {r["dataset"] for r in res["rows"]} == {"mnist"}
    by_name = {r["name"]: r for r in res["rows"]}
    # 28×28: FC 3,136 → 1,024; the circulant keeps 3,136 + 1,024 of its 3,212,288 + 1,024
    assert by_name["dense-fc"]["num_params"] - by_name["circulant-fc"]["num_params"] == (
        3136 * 1024 + 1024 - (3136 + 1024))
