"""compactnn.compress: policy, per-layer fit and report, arbitrary models, save/load, CLI."""

import json

import pytest
import torch
from torch import nn

from compactnn import CompressionPolicy, compress, load_compressed, save_compressed
from compactnn.cli import main
from compactnn.compress import PointwiseConv, apply_structure, compress_run
from compactnn.layers import available_layers, get_layer_class
from compactnn.models import make_model

pytestmark = pytest.mark.usefixtures("one_thread")

#: every family compress can use (those with a from_dense), except the dense one
FAMILIES = [f for f in available_layers(capability="from_dense") if f != "dense"]


class Block(nn.Module):
    """A hand-written pre-norm transformer block: attention through four nn.Linear, an MLP."""

    def __init__(self, d=16, heads=2, hidden=32):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.ModuleDict({k: nn.Linear(d, d) for k in ("q", "k", "v", "o")})
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d))

    def forward(self, x):
        b, t, d = x.shape
        h = self.norm1(x)
        q, k, v = (self.attn[n](h).view(b, t, self.heads, -1).transpose(1, 2) for n in "qkv")
        a = nn.functional.scaled_dot_product_attention(q, k, v)
        x = x + self.attn["o"](a.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.norm2(x))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([Block(), Block()])
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        return self.head(x)


def _make_rank_(w, r):
    """Replace the matrix view of ``w`` by its best rank-``r`` approximation, in place."""
    m = w.detach().reshape(w.shape[0], -1)
    u, s, vh = torch.linalg.svd(m, full_matrices=False)
    with torch.no_grad():
        w.copy_(((u[:, :r] * s[:r]) @ vh[:r]).reshape(w.shape))


def _params(m):
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_compresses_a_rectangular_mlp(family):
    model = make_model("dense-mlp", 24, 5, width=16, depth=2)
    x = torch.randn(7, 24)
    before = model(x)
    new, report = compress(model, CompressionPolicy(family))
    assert torch.equal(model(x), before)  # the original is untouched
    assert new(x).shape == (7, 5)
    for r in report.layers:
        layer = new.get_submodule(r["name"])
        assert type(layer) is get_layer_class(family)
        assert r["new_params"] == _params(layer) == layer.num_params(
            r["in_features"], r["out_features"], **r["kwargs"])
        assert r["new_params"] < r["old_params"] and 0 <= r["rel_error"] <= 1.0 + 1e-6
        w = model.get_submodule(r["name"]).weight.detach().double()
        err = (layer.to_dense().detach().double() - w).norm() / w.norm()
        assert r["rel_error"] == pytest.approx(float(err), rel=1e-5, abs=1e-7)
    names = {r["name"] for r in report.layers} | {s["name"] for s in report.skipped}
    assert names == {"net.0", "net.2", "net.4"}  # every dense layer is accounted for


@pytest.mark.parametrize("family, make", [
    ("circulant", lambda: get_layer_class("circulant")(12, 12)),
    ("toeplitz", lambda: get_layer_class("toeplitz")(12, 9)),
    ("lowrank", lambda: get_layer_class("lowrank")(12, 9, rank=2)),
])
def test_weights_already_in_the_structure_give_zero_error_and_equal_outputs(family, make):
    structured = make()
    lin = nn.Linear(structured.in_features, structured.out_features)
    with torch.no_grad():
        lin.weight.copy_(structured.to_dense())
    model = nn.Sequential(lin, nn.Tanh(), nn.Linear(structured.out_features, 3))
    kw = {"kwargs": {"rank": 2}} if family == "lowrank" else {}
    new, report = compress(model, CompressionPolicy(family, include=("0",), **kw))
    [row] = report.layers
    assert row["name"] == "0" and row["rel_error"] < 1e-6 and row["fit"] == "exact"
    x = torch.randn(6, structured.in_features)
    torch.testing.assert_close(new(x), model(x))


def test_ratio_and_budget_choose_the_size_parameter():
    lin = nn.Linear(100, 80)
    old = 100 * 80 + 80
    for ratio in (5, 10, 20):
        _, rep = compress(nn.Sequential(lin), CompressionPolicy("lowrank", ratio=ratio))
        [r] = rep.layers
        rank = r["kwargs"]["rank"]
        assert r["new_params"] <= old / ratio < rank * 180 + 180 + 80  # the largest that fits
    _, rep = compress(nn.Sequential(lin), CompressionPolicy("hashed", budget=900))
    [r] = rep.layers
    assert 890 <= r["new_params"] <= 900
    # fixed-size family: kept when it cannot meet the target, with the reason
    _, rep = compress(nn.Sequential(lin), CompressionPolicy("circulant", ratio=1000))
    assert not rep.layers and "fixed size" in rep.skipped[0]["reason"]
    _, rep = compress(nn.Sequential(lin), CompressionPolicy("lowrank", budget=100))
    assert not rep.layers and "rank=1 already misses" in rep.skipped[0]["reason"]


def test_transformer_block_nested_and_shared_modules():
    model = Model()
    model.blocks[1].mlp[0] = model.blocks[0].mlp[0]  # one Linear in two places
    model.eval()
    for m in model.modules():  # weights of rank 2: a rank-2 layer represents them exactly
        if isinstance(m, nn.Linear):
            _make_rank_(m.weight, 2)
    x = torch.randn(2, 4, 16)
    new, report = compress(model, CompressionPolicy("lowrank", kwargs={"rank": 2},
                                                    include=("*.mlp.*", "*.attn.*")))
    names = [r["name"] for r in report.layers]
    assert len(names) == 2 * 4 + 3 and "head" not in names  # shared: one entry
    shared = next(r for r in report.layers if r["aliases"])
    assert shared["aliases"] == ["blocks.1.mlp.0"]
    assert new.blocks[0].mlp[0] is new.blocks[1].mlp[0]  # still shared
    assert type(new.head) is nn.Linear and not new.training  # mode kept
    torch.testing.assert_close(new(x), model(x), atol=1e-5, rtol=1e-5)
    _, rep = compress(model, CompressionPolicy("lowrank", kwargs={"rank": 2},
                                               skip=("blocks.0.*",)))
    assert {r["name"] for r in rep.layers} == {"head", "blocks.1.attn.q", "blocks.1.attn.k",
                                               "blocks.1.attn.v", "blocks.1.attn.o",
                                               "blocks.1.mlp.2"}
    assert any("skip pattern 'blocks.0.*'" in s["reason"] for s in rep.skipped)


def test_a_module_held_twice_by_one_parent_is_replaced_in_both_places():
    lin = nn.Linear(12, 12)
    _make_rank_(lin.weight, 2)
    model = nn.Sequential(lin, nn.ReLU(), lin, nn.ReLU(), nn.Linear(12, 3)).eval()
    new, report = compress(model, CompressionPolicy("lowrank", kwargs={"rank": 2},
                                                    include=("0", "2")))
    [row] = report.layers
    assert row["name"] == "0" and row["aliases"] == ["2"]
    assert new[0] is new[2] and type(new[2]).__name__ == "LowRank"
    assert _params(model) - _params(new) == row["old_params"] - row["new_params"]
    x = torch.randn(4, 12)
    torch.testing.assert_close(new(x), model(x), atol=1e-5, rtol=1e-5)


def test_tied_weights_are_kept_and_the_report_counts_only_real_savings():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.mid = nn.Embedding(20, 8), nn.Linear(8, 8)
            self.head = nn.Linear(8, 20, bias=False)
            self.head.weight = self.emb.weight  # weight tying, as in language models

        def forward(self, i):
            return self.head(self.mid(self.emb(i)))

    model = Tied()
    new, report = compress(model, CompressionPolicy("circulant"))
    assert [r["name"] for r in report.layers] == ["mid"]
    assert "tied to emb" in next(s["reason"] for s in report.skipped if s["name"] == "head")
    assert new.head.weight is new.emb.weight
    assert _params(model) - _params(new) == report.old_params - report.new_params
    frozen = nn.Sequential(nn.Linear(8, 8).requires_grad_(False))
    _, rep = compress(frozen, CompressionPolicy("circulant"))
    assert rep.layers[0]["old_params"] == 72  # a frozen layer still holds its parameters


def test_pytorch_attention_modules_are_kept_with_the_reason_and_still_run():
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True).eval()
    new, report = compress(layer, CompressionPolicy("lowrank", kwargs={"rank": 4}))
    assert not report.layers
    reasons = {s["name"]: s["reason"] for s in report.skipped}
    assert "MultiheadAttention" in reasons["self_attn.out_proj"]
    assert "fast path" in reasons["linear1"]
    x = torch.randn(2, 3, 16)
    with torch.no_grad():
        torch.testing.assert_close(new(x), layer(x))


def test_cnn_head_and_pointwise_convolutions():
    lenet = make_model("lenet", 784, 10, input_shape=(1, 28, 28))
    new, report = compress(lenet, CompressionPolicy("lowrank", ratio=20, min_size=20_000))
    assert [r["name"] for r in report.layers] == ["classifier.1"]
    assert report.layers[0]["ratio"] >= 20
    assert new(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 6, 1, stride=2, padding=1))
    _make_rank_(conv[1].weight, 2)
    new, report = compress(conv, CompressionPolicy("lowrank", kwargs={"rank": 2},
                                                   conv1x1=True))
    assert [r["name"] for r in report.layers] == ["1"] and report.layers[0]["kind"] == "conv1x1"
    assert isinstance(new[1], PointwiseConv) and isinstance(new[0], nn.Conv2d)
    x = torch.randn(2, 3, 7, 7)
    torch.testing.assert_close(new(x), conv(x), atol=1e-5, rtol=1e-5)
    _, rep = compress(conv, CompressionPolicy("lowrank", kwargs={"rank": 2}))
    assert not rep.layers  # 1×1 convolutions only on request


def test_device_dtype_and_mode_are_preserved():
    model = nn.Sequential(nn.Linear(20, 20), nn.ReLU(), nn.Linear(20, 4)).double().train()
    new, report = compress(model, CompressionPolicy("dc"))
    assert len(report.layers) == 2
    for m in (new[0], new[2]):
        assert type(m).__name__ == "DiagonalCirculant" and m.training
        assert all(p.dtype == torch.float64 for p in m.parameters())
    half = nn.Sequential(nn.Linear(16, 16)).to(torch.bfloat16).eval()
    new, _ = compress(half, CompressionPolicy("toeplitz"))
    assert new[0].t.dtype == torch.bfloat16 and not new[0].training


def test_policy_validation_and_round_trip():
    p = CompressionPolicy("lowrank", include=["*.mlp.*"], skip="head",
                          kwargs={"rank": 5}, min_size=100, conv1x1=True)
    assert p.include == ("*.mlp.*",) and p.skip == ("head",)
    again = CompressionPolicy.from_dict(json.loads(json.dumps(p.to_dict())))
    assert again == p and hash(again) == hash(p)
    bad = [
        (dict(family="nope"), "unknown layer 'nope'"),
        (dict(family="lowrank", ratio=1.0), "ratio must be a number > 1"),
        (dict(family="lowrank", ratio=0.5), "ratio must be a number > 1"),
        (dict(family="lowrank", ratio=4, budget=10), "not both"),
        (dict(family="lowrank", budget=0), "budget must be a positive int"),
        (dict(family="lowrank", ratio=4, kwargs={"rank": 3}), "give one of them"),
        (dict(family="circulant", kwargs={"rank": 3}), "does not take rank"),
        (dict(family="dense"), "does not compress"),
        (dict(family="lowrank", min_size=-1), "min_size"),
        (dict(family="lowrank", include=("",)), "non-empty strings"),
    ]
    for kw, msg in bad:
        with pytest.raises(ValueError, match=msg) as e:
            CompressionPolicy(**kw)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="unknown compression policy key"):
        CompressionPolicy.from_dict({"family": "lowrank", "rate": 3})


@pytest.mark.parametrize("family", ["hashed", "dc", "acdc", "lowrank"])
def test_save_and_load_rebuild_the_compressed_model(family, tmp_path):
    def base():
        return Model()

    model = base()
    policy = CompressionPolicy(family, ratio=2) if family in ("hashed", "lowrank") \
        else CompressionPolicy(family, include=("*.mlp.*",))
    new, report = compress(model, policy)
    assert report.layers
    path = save_compressed(tmp_path / "m.pt", new, policy, report)
    loaded = load_compressed(path, base)
    x = torch.randn(2, 3, 16)
    torch.testing.assert_close(loaded(x), new(x))
    again = load_compressed(path, model)  # a module as the base: copied, not changed
    assert type(model.head) is nn.Linear
    torch.testing.assert_close(again(x), new(x))
    # the architecture alone, freshly initialised: the same structure
    fresh = apply_structure(base(), policy)
    assert fresh.state_dict().keys() == new.state_dict().keys()


def test_load_errors_are_one_line(tmp_path):
    policy = CompressionPolicy("lowrank", ratio=2)
    new, _ = compress(Model(), policy)
    path = save_compressed(tmp_path / "m.pt", new, policy)
    with pytest.raises(ValueError, match="does not fit this architecture") as e:
        load_compressed(path, lambda: nn.Sequential(nn.Linear(16, 16)))
    assert "\n" not in str(e.value)
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a compactnn compressed model"):
        load_compressed(tmp_path / "other.pt", Model)
    (tmp_path / "junk.pt").write_text("hello")
    with pytest.raises(ValueError, match="not a PyTorch checkpoint"):
        load_compressed(tmp_path / "junk.pt", Model)


# --- CLI ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", "--model", "dense-mlp", "--width", "48", "--depth", "1",
                 "--dataset", "digits", "--epochs", "2", "--runs-dir", str(root),
                 "--no-progress"]) == 0
    return next(root.iterdir())


def test_cli_compress_finetune_distill_and_reload(trained_run, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compress", str(trained_run), "--family", "lowrank", "--ratio", "4",
                 "--finetune-epochs", "1", "--distill", "--out", str(out),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "| net.0 | 48 × 64 |" in text and "test acc before" in text and "after" in text
    rep = json.loads((out / "report.json").read_text())
    assert rep["policy"]["family"] == "lowrank" and rep["policy"]["ratio"] == 4
    acc = rep["accuracy"]
    assert set(acc) == {"original", "compressed", "finetuned"}
    assert all(0 <= v <= 1 for v in acc.values()) and rep["finetune"]["distill"]
    from compactnn.compress import load_compressed_run

    model = load_compressed_run(out)
    assert type(model.net[0]).__name__ == "LowRank"
    from compactnn.runs import load_run_model

    orig = load_run_model(trained_run)
    x = torch.randn(3, 64)
    assert model(x).shape == orig(x).shape == (3, 10)


def test_cli_compress_errors_exit_2_with_one_line(trained_run, tmp_path, capsys):
    def err(*argv):
        assert main(["compress", *argv]) == 2
        e = capsys.readouterr().err
        assert e.count("\n") == 1
        return e

    assert "ratio must be a number > 1" in err(str(trained_run), "--family", "lowrank",
                                               "--ratio", "0.5", "--out", str(tmp_path / "a"))
    assert "unknown layer" in err(str(trained_run), "--family", "nope", "--out",
                                  str(tmp_path / "b"))
    assert "not a run directory" in err(str(tmp_path), "--family", "lowrank", "--out",
                                        str(tmp_path / "c"))
    assert "--distill needs --finetune-epochs" in err(str(trained_run), "--family", "dc",
                                                      "--distill", "--out", str(tmp_path / "d"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "d").exists()
    # refused before any work: bad distillation settings, --out the run folder itself
    assert "temperature must be a positive" in err(
        str(trained_run), "--family", "dc", "--finetune-epochs", "1", "--distill",
        "--temperature", "0", "--out", str(tmp_path / "e"))
    assert "the run folder itself" in err(str(trained_run), "--family", "dc", "--out",
                                          str(trained_run))
    # a policy that replaces nothing writes nothing
    assert "replaces no layer" in err(str(trained_run), "--family", "lowrank", "--include",
                                      "nothing*", "--out", str(tmp_path / "f"))
    assert not (tmp_path / "e").exists() and not (tmp_path / "f").exists()
    assert not (trained_run / "model.pt").exists()


def test_compress_run_refuses_a_streamed_data_set_with_one_line(trained_run, tmp_path,
                                                                 monkeypatch):
    """A run trained on a streamed data set (YouTube-8M) cannot be evaluated on in-memory
    loaders: a clear error before anything is written, not an internal one."""
    import compactnn.runs

    class Streamed:
        name = "youtube8m-video"

        def loaders(self, *a, **k):
            raise AssertionError("not to be called")

    monkeypatch.setattr(compactnn.runs, "load_data", lambda cfg, progress=False: Streamed())
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="streamed from its files"):
        compress_run(trained_run, CompressionPolicy("circulant"), out, log=lambda s: None)
    assert not out.exists()
