import json
import shutil

import pytest

from compactnn.cli import main
from compactnn.config import RunConfig
from compactnn.data import resolve_dataset
from compactnn.experiments.runner import aggregate, markdown_table, paper_table
from compactnn.registry import available, get

EXPERIMENTS = available("experiment")


def test_aggregate_and_table_show_the_paper_beside_ours():
    rows = [{"name": "a", "num_params": 10, "test": 0.5, "diverged": False},
            {"name": "a", "num_params": 10, "test": 0.7, "diverged": False},
            {"name": "b", "num_params": 20, "test": None, "diverged": True}]
    agg = {a["name"]: a for a in aggregate(rows)}
    assert agg["a"]["mean"] == pytest.approx(0.6) and agg["a"]["std"] == pytest.approx(0.1414, 1e-3)
    assert agg["b"]["mean"] is None and agg["b"]["diverged"] == 1
    paper = {"rows": [{"label": "A", "key": "a", "value": 0.55, "params": 12, "status": "ok"},
                      {"label": "B", "key": "b", "value": None, "status": "diverged"}]}
    md = markdown_table(list(agg.values()), paper)
    assert "| a | 10 | 0.6000 ± 0.1414 | 2 | 0.550 | 12 |" in md
    assert "| b | 20 | diverged | 1 | diverged | — |" in md
    assert "| A | 12 | 0.55 | ok |" in paper_table(paper)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_paper_numbers_are_data_and_keys_name_real_configs(name):
    exp = get("experiment", name)
    assert exp.paper and exp.paper["rows"] and exp.paper.get("source")
    if exp.configs is not None:
        spec, _ = resolve_dataset("digits" if exp.dataset == "auto" else exp.dataset)
        names = {c.name for quick in (False, True) for c in exp.configs(quick, spec)}
        keys = {r["key"] for r in exp.paper["rows"] if r.get("key")}
        assert keys and keys <= names, keys - names
        assert all(isinstance(c, RunConfig) for c in exp.configs(True, spec))


def test_size_vs_accuracy_takes_its_input_size_from_the_data():
    exp = get("experiment", "size-vs-accuracy")
    for data, n_in in (("digits", 64), ("cifar10", 3072)):
        spec = get("dataset", data)
        dense = next(c for c in exp.configs(False, spec) if c.name == "dense")
        assert dense.model.args["width"] == n_in and dense.data.name == data


def test_compression_verdicts_need_three_seeds_and_a_gap_beyond_the_spread(tmp_path):
    from compactnn.experiments import compression

    def seeds(name, params, accs):
        return [{"name": name, "num_params": params, "test": a, "diverged": False}
                for a in accs]

    rows = (seeds("dcnn-8x1024", 25_620, [0.880, 0.882, 0.881])
            + seeds("hashnet-1/64", 46_666, [0.870, 0.871, 0.872])  # 0.009 apart: better
            + seeds("hashnet-1/40", 72_860, [0.878, 0.884, 0.881])  # inside the spread
            + seeds("dense-59", 46_915, [0.89, 0.89])  # two seeds only
            + seeds("distilled-dense-59", 46_915, [0.85, 0.86, 0.855]))
    md = compression._report(rows, tmp_path)
    line = {ln.split(" | ")[3]: ln for ln in md.splitlines()
            if ln.startswith("| dcnn-8x1024 |")}
    assert line["hashnet-1/64"].endswith("| better |")
    assert line["hashnet-1/40"].endswith("| not settled |")
    assert line["dense-59"].endswith("| not settled |")
    assert line["distilled-dense-59"].endswith("| better |")
    assert "| distilled-dense-59 | 46,915 | 0.8550 ± 0.0050 | dense-59 |" in md
    assert "dcnn-10x1024" not in md  # pairs without both runs are left out
    assert (tmp_path / "compression.png").is_file()


def test_scattering_report_compares_dc_with_each_ldr_cell_and_shows_convergence(tmp_path):
    from compactnn.experiments import scattering

    def seeds(name, params, curves):
        return [{"name": name, "num_params": params, "test": c[-1], "history": c,
                 "epochs": len(c), "diverged": False} for c in curves]

    rows = (seeds("scat-dc-1", 23_834, [[0.5, 0.8, 0.84], [0.5, 0.8, 0.85], [0.5, 0.8, 0.86]])
            + seeds("scat-ldr-sd-r1", 31_770, [[0.4, 0.7, 0.80], [0.4, 0.7, 0.81],
                                               [0.4, 0.7, 0.79]]))
    md = scattering._report(rows, tmp_path)
    assert ("| scat-dc-1 | 23,834 | 0.8500 ± 0.0100 | scat-ldr-sd-r1 | 31,770 | "
            "0.8000 ± 0.0100 | better |") in md
    assert "| scat-dc-1 | 0.8000 (k = 2) | 0.8500 | +0.0500 |" in md
    assert "scat-dc-3 |" not in md
    # cells of unequal epochs are not compared
    rows += seeds("scat-toeplitz-like-r1", 23_834, [[0.5, 0.6, 0.7, 0.8]] * 3)
    assert "| scat-toeplitz-like-r1 | 23,834 |" not in scattering._report(rows, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_runs_quick_and_resumes(name, tmp_path, capsys):
    args = ["reproduce", name, "--quick", "--runs-dir", str(tmp_path / "runs"), "--no-progress"]
    results = tmp_path / "runs" / "quick-results"  # a quick run never writes into results/
    assert main(args) == 0
    page = (results / name / "README.md").read_text()
    assert "quick" in page and "![" in page and "The paper's numbers" in page
    assert list((results / name).glob("*.png"))
    res = json.loads((results / name / "results.json").read_text())
    if "rows" in res:  # training experiments: every run has a run folder, and resume works
        for row in res["rows"]:
            run = tmp_path / "runs" / name / row["name"].replace("/", "_") / "seed0"
            assert RunConfig.load(run).name == row["name"]
        capsys.readouterr()
        mtimes = {p: p.stat().st_mtime for p in (tmp_path / "runs").rglob("metrics.json")}
        assert main(args) == 0  # second call: everything is finished, nothing retrains
        assert {p: p.stat().st_mtime for p in mtimes} == mtimes
    assert main(["report", "--results-dir", str(results)]) == 0
    assert name in (results / "README.md").read_text()


def test_a_finished_run_is_reused_only_for_the_same_config(tmp_path, capsys):
    base = ["reproduce", "nonlinearity", "--quick", "--dataset", "digits", "--runs-dir",
            str(tmp_path), "--no-progress", "--set", "data.limit_train=200"]
    assert main(base) == 0
    res = tmp_path / "quick-results" / "nonlinearity" / "results.json"
    first = json.loads(res.read_text())["rows"]
    capsys.readouterr()
    assert main(base + ["--set", "train.lr=0.01"]) == 0  # other settings: every run reruns
    assert capsys.readouterr().out.count("settings differ from the recorded run") == len(first)
    again = json.loads(res.read_text())["rows"]
    assert [r["test"] for r in again] != [r["test"] for r in first]
    for row in again:
        run = tmp_path / "nonlinearity" / row["name"] / "seed0"
        assert RunConfig.load(run).train.lr == 0.01
    # a run killed before its first checkpoint: same settings, nothing to resume
    run = tmp_path / "nonlinearity" / again[0]["name"] / "seed0"
    for f in ("metrics.json", "checkpoint.pt", "checkpoint.prev.pt"):
        (run / f).unlink(missing_ok=True)
    assert main(base + ["--set", "train.lr=0.01"]) == 0
    out = capsys.readouterr().out
    assert out.count("an unfinished run with no checkpoint; rerunning") == 1
    assert "settings differ" not in out
    assert main(base + ["--set", "name=x"]) == 2  # 12 configs cannot share one name
    assert "share the name" in capsys.readouterr().err


def test_custom_experiments_refuse_settings_they_would_ignore(tmp_path, capsys):
    assert main(["reproduce", "init-variance", "--quick", "--set", "train.epochs=3",
                 "--runs-dir", str(tmp_path)]) == 2
    assert "trains no models" in capsys.readouterr().err
    assert not (tmp_path / "quick-results").exists()


def test_unknown_experiment(capsys):
    assert main(["reproduce", "nope", "--quick"]) == 2
    assert "unknown experiment" in capsys.readouterr().err


def test_only_a_non_finite_loss_is_a_divergence(tmp_path, capsys, monkeypatch):
    """Any other failure stops the command with a nonzero status and writes no table (it used
    to become a 'diverged' row, exit 0; issue 10, defect 3)."""
    import compactnn.experiments.runner as runner

    base = ["reproduce", "nonlinearity", "--quick", "--dataset", "digits", "--runs-dir",
            str(tmp_path), "--no-progress", "--set", "data.limit_train=64"]
    assert main(base + ["--set", "train.device=bogus"]) == 2
    assert "train.device 'bogus'" in capsys.readouterr().err

    def broken(*args, **kwargs):
        raise RuntimeError("a kernel failed")

    monkeypatch.setattr(runner, "run", broken)
    assert main(base) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: a kernel failed" in err and "diverged" not in err
    assert not list(tmp_path.rglob("diverged.json")) and not list(tmp_path.rglob("results.json"))


def test_report_only_writes_the_page_from_finished_runs_and_lists_the_missing(tmp_path, capsys):
    base = ["reproduce", "nonlinearity", "--quick", "--dataset", "digits", "--runs-dir",
            str(tmp_path), "--no-progress"]
    assert main(base + ["--report-only"]) == 2
    assert "no finished runs" in capsys.readouterr().err
    assert main(base) == 0
    runs = sorted((tmp_path / "nonlinearity").glob("*/seed0"))
    shutil.rmtree(runs[0])
    capsys.readouterr()
    assert main(base + ["--report-only"]) == 0
    res = json.loads((tmp_path / "quick-results" / "nonlinearity" / "results.json").read_text())
    assert res["missing"] == [f"{runs[0].parent.name} seed 0"]
    assert len(res["rows"]) == len(runs) - 1
    page = (tmp_path / "quick-results" / "nonlinearity" / "README.md").read_text()
    assert f"Partial report: {len(runs) - 1} of {len(runs)} runs finished" in page
    assert not runs[0].exists()  # nothing was trained
    assert main(["reproduce", "init-variance", "--quick", "--report-only", "--runs-dir",
                 str(tmp_path)]) == 2


#: the experiments the DCNN paper ran on MNIST (Table 3); they take --dataset mnist
MNIST_EXPERIMENTS = ["compression"]


@pytest.mark.parametrize("name", MNIST_EXPERIMENTS)
def test_the_papers_mnist_experiments_run_on_mnist_idx_files(name, tmp_path):
    import numpy as np

    from compactnn.data import write_idx

    rng = np.random.default_rng(0)
    data = tmp_path / "mnist"
    data.mkdir()
    for split, n in (("train", 300), ("t10k", 100)):
        write_idx(data / f"{split}-images-idx3-ubyte.gz",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(data / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    assert main(["reproduce", name, "--quick", "--dataset", "mnist", "--data-dir", str(data),
                 "--runs-dir", str(tmp_path / "runs"), "--no-progress"]) == 0
    res = json.loads((tmp_path / "runs" / "quick-results" / name / "results.json").read_text())
    assert res["rows"] and {r["dataset"] for r in res["rows"]} == {"mnist"}
    run_json = next((tmp_path / "runs" / name).glob("*/seed0/run.json"))
    seen = json.loads(run_json.read_text())["data"]
    assert seen["name"] == "mnist" and seen["train"] + seen["val"] == 300
