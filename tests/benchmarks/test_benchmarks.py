"""Smoke tests of the benchmark scripts (their --quick mode): they run and write their tables.
No timing is asserted here — performance numbers live in results/benchmarks/."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_layers_quick(tmp_path):
    bench = _load("bench_layers")
    bench.main(["--quick", "--out", str(tmp_path)])
    rows = json.loads((tmp_path / "layers.json").read_text())["rows"]
    layers = {r["layer"] for r in rows}
    assert {"dc", "naive_dc", "nn.Linear", "toeplitz", "acdc"} <= layers
    dc = next(r for r in rows if r["layer"] == "dc")
    assert dc["fwdbwd_s"] > 0 and "speedup_vs_nn_linear" in dc and "mem_vs_naive_dc" in dc
    assert (tmp_path / "layers.md").read_text().count("| dc |") == 2
    assert (tmp_path / "layers.csv").is_file() and (tmp_path / "layers_time_vs_n.png").is_file()


def test_naive_dc_reference_agrees_with_the_library_layer():
    bench = _load("bench_layers")
    naive = bench.NaiveDC(12).double()
    from compactnn import DiagonalCirculant

    layer = DiagonalCirculant(12, 12, dtype=torch.float64)
    with torch.no_grad():
        layer.c.copy_(naive.c)
        layer.d.copy_(naive.d)
        layer.bias.copy_(naive.bias)
    x = torch.randn(3, 12, dtype=torch.float64)
    torch.testing.assert_close(layer(x), naive(x))


def test_saved_bytes_counts_activations_not_parameters():
    bench = _load("bench_layers")
    lin = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU())
    x = torch.randn(8, 64, requires_grad=True)
    # ReLU saves its output (8x64 floats); Linear saves x (excluded: the caller's tensor)
    assert bench.saved_bytes(lin, x) == 8 * 64 * 4


def test_bench_models_quick(tmp_path):
    bench = _load("bench_models")
    bench.main(["--quick", "--out", str(tmp_path), "--models", "dcnn", "dcnn_recompute",
                "naive_dcnn"])
    rows = {r["model"]: r for r in json.loads((tmp_path / "models.json").read_text())}
    assert set(rows) == {"dcnn", "dcnn_recompute", "naive_dcnn"}
    naive = rows["naive_dcnn"]["saved_MiB"]
    # plain autograd through torch.fft keeps 4 tensors per layer; the fused op keeps u and the
    # activation, plus (batches this small only) the input's spectrum; with recompute=True only
    # the activation
    assert rows["dcnn"]["saved_MiB"] == pytest.approx(naive * 3 / 4, rel=0.05)
    assert rows["dcnn_recompute"]["saved_MiB"] == pytest.approx(naive / 4, rel=0.1)
    assert rows["dcnn"]["peak_tensor_MiB"] < rows["naive_dcnn"]["peak_tensor_MiB"]
    assert "dcnn vs naive DCNN" in (tmp_path / "models.md").read_text()


def test_bench_ddp_quick(tmp_path):
    """1 process (1 and 2 threads) vs 2 torchrun processes: every setup trains and is reported
    (samples/s, the speed-up against one single-threaded process)."""
    bench = _load("bench_ddp")
    rows = bench.main(["--quick", "--out", str(tmp_path), "--batch", "32", "--depth", "1"])
    by_setup = {r["setup"]: r for r in rows}
    assert {"1p×1t", "2p×1t"} <= set(by_setup) and by_setup["1p×1t"]["speedup_vs_1p1t"] == 1.0
    assert all(r["samples_per_s"] > 0 and r["windows"] >= 2 for r in rows)
    assert by_setup["2p×1t"]["grad_allreduce_us"] is not None
    saved = json.loads((tmp_path / "ddp.json").read_text())
    assert saved["rows"] == rows and saved["meta"]["global_batch"] == 32
    assert (tmp_path / "ddp.md").read_text().count("| 2p×1t") >= 1


def test_bench_conv_quick(tmp_path):
    """Every operator beside nn.Conv2d at C = 16 on 8×8 maps, and the circulant impl sweep."""
    import csv

    bench = _load("bench_conv")
    bench.main(["--quick", "--out", str(tmp_path), "--threads", "1"])
    saved = json.loads((tmp_path / "conv.json").read_text())
    rows = {r["op"]: r for r in saved["rows"]}
    assert {"nn.Conv2d", "full", "circulant", "dc", "lean", "separable"} <= set(rows)
    for r in rows.values():
        assert r["channels"] == 16 and r["fwd_s"] > 0 and r["bwd_s"] > 0 and r["fwdbwd_s"] > 0
        assert r["macs"] > 0 and r["time_vs_conv2d"] > 0
    assert rows["nn.Conv2d"]["macs_vs_conv2d"] == 1.0 and rows["circulant"]["macs_vs_conv2d"] < 1
    sweep = saved["impl_sweep"]
    assert sweep and all(r["fft_s"] > 0 and r["auto"] == "fft" for r in sweep)
    assert any("conv3d_s" in r for r in sweep)
    with open(tmp_path / "conv.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(saved["rows"])
    page = (tmp_path / "conv.md").read_text()
    assert page.count("| circulant |") == 1 and "conv3d vs fft" in page
    assert saved["meta"]["threads"] == 1
