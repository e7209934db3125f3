"""The DCNN paper's YouTube-8M models: parameter counts of Tables 4 and 5, the frame model's
masking, MoE + Context Gating logits against a direct probability computation, DC swaps."""

import math

import pytest
import torch

from compactnn.layers import get_layer_class
from compactnn.models import StructuredMLP, make_model
from compactnn.models.youtube8m import (
    ContextGating,
    MixtureOfExperts,
    YouTube8MFrameModel,
    paper_weight_count,
)

IN, CLASSES, FRAMES = 1024 + 128, 3862, 300

# Table 4 (video level): the paper's exact counts, and what its rounded ones stand for
TABLE4 = [("original", dict(layer="dense", depth=1, classifier="dense", activation="relu"),
           5_781_142, "5.7M"),
          ("4 DC", dict(layer="dc", depth=4), 25_410, "25 410"),
          ("32 DC", dict(layer="dc", depth=32), 122_178, "122 178"),
          ("4 DC + 1 FC", dict(layer="dc", depth=4, classifier="dense"), 4_466_710, "4.46M")]
TABLE4_COMPRESSION = {"4 DC": 0.44, "32 DC": 2.11, "4 DC + 1 FC": 77}  # % of the original


@pytest.mark.parametrize("label,kw,count,paper", TABLE4, ids=[r[0] for r in TABLE4])
def test_table4_parameter_counts(label, kw, count, paper):
    """Weights without BatchNorm: exactly 25,410 and 122,178; the dense baseline's 5,781,142
    and 4 DC + 1 FC's 4,466,710 are what 5.7M and 4.46M truncate."""
    model = make_model("yt8m-video", IN, CLASSES, **kw)
    assert paper_weight_count(model) == count
    assert StructuredMLP.predicted_num_params(IN, CLASSES, **kw) == count
    if paper.endswith("M"):
        digits = len(paper) - 3  # decimals shown
        assert math.floor(count / 1e6 * 10 ** digits) / 10 ** digits == float(paper[:-1])
    else:
        assert count == int(paper.replace(" ", ""))
    bn = sum(m.num_features * 2 for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d))
    assert bn == 2 * IN * kw["depth"]  # BatchNorm before each non-linearity (not counted)
    assert sum(p.numel() for p in model.parameters()) == count + bn
    if label in TABLE4_COMPRESSION:
        ratio = 100 * count / TABLE4[0][2]
        shown = TABLE4_COMPRESSION[label]
        assert round(ratio, 2 if shown < 10 else 0) == shown


# Table 5 (frame level): the paper gives millions (and % of the original); ours truncate to them
TABLE5 = [("original", {}, 45_334_632, 45, None), ("dbof", dict(dbof="dc"), 36_962_408, 36, 80),
          ("fc", dict(fc="dc"), 41_149_032, 41, 91), ("moe", dict(moe="dc"), 12_700_732, 12, 26)]


@pytest.mark.parametrize("label,kw,count,millions,percent", TABLE5, ids=[r[0] for r in TABLE5])
def test_table5_parameter_counts(label, kw, count, millions, percent):
    model = make_model("yt8m-frame", FRAMES * (IN + 1), CLASSES,
                       input_shape=(FRAMES, IN + 1), **kw)
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert n == count and n // 10 ** 6 == millions
    if percent is not None:  # the paper's percentages are of its truncated millions
        assert int(100 * millions / 45) == percent
    dc = get_layer_class("dc")
    blocks = {"dbof": [model.dbof_rgb.proj], "fc": [model.fc_rgb[0]],
              "moe": [model.moe.gates, model.moe.experts, model.gating.proj]}
    for block, layers in blocks.items():
        want = kw.get(block, "dense") == "dc"
        assert all(isinstance(layer, dc) == want for layer in layers), block


def test_frame_model_with_audio_adds_the_audio_branch():
    model = make_model("yt8m-frame", 10 * 1153, 50, input_shape=(10, 1153), cluster_size=64,
                       hidden_size=16, audio=True)
    assert model.dbof_audio.proj.in_features == 128 and model.dbof_audio.proj.out_features == 32
    x = torch.randn(3, 10, 1153)
    x[..., -1] = 1.0
    assert model(x).shape == (3, 50)


def _small(**kw):
    torch.manual_seed(0)
    return YouTube8MFrameModel(12 * 1153, 30, input_shape=(12, 1153), cluster_size=32,
                               hidden_size=8, **kw)


@pytest.mark.parametrize("kw", [{}, dict(dbof="dc", fc="dc", moe="dc"), dict(audio=True)])
def test_frame_model_pools_only_the_marked_frames(kw):
    """Eval mode: the output does not depend on padded frames' contents or on how much padding
    follows; a video without frames still gets finite logits."""
    model = _small(**kw).eval()
    torch.manual_seed(1)
    lengths = [5, 12, 1, 0]
    x = torch.randn(4, 12, 1153)
    for i, t in enumerate(lengths):
        x[i, :, -1] = (torch.arange(12) < t).float()
    out = model(x)
    assert out.isfinite().all()
    noisy = x.clone()
    pad = noisy[..., -1] == 0
    noisy[..., :-1][pad] = 100 * torch.randn(int(pad.sum()), 1152)
    torch.testing.assert_close(model(noisy), out)
    # the first video alone, as 5 frames then padding of another length (same weights)
    longer = YouTube8MFrameModel(20 * 1153, 30, input_shape=(20, 1153), cluster_size=32,
                                 hidden_size=8, **kw).eval()
    longer.load_state_dict(model.state_dict())
    y = torch.zeros(1, 20, 1153)
    y[0, :12] = x[0]
    torch.testing.assert_close(longer(y), out[:1])


def test_moe_and_context_gating_logits_are_the_probability_in_log_space():
    """sigmoid(logits) equals the MoE's probability computed directly, in float64, with p
    near 0 and near 1 where a naive log(p / (1 - p)) would lose precision."""
    torch.manual_seed(2)
    moe = MixtureOfExperts(6, 5, mixtures=3).double()
    cg = ContextGating(5).double().eval()
    with torch.no_grad():
        cg.bn.running_mean.uniform_(-0.5, 0.5)
        cg.bn.running_var.uniform_(0.5, 2.0)
    x = 3 * torch.randn(7, 6, dtype=torch.float64)
    gates = moe.gates(x).view(7, 5, 4).softmax(-1)
    experts = torch.sigmoid(moe.experts(x).view(7, 5, 3))
    p = (gates[..., :3] * experts).sum(-1)
    log_p, log_q = moe(x)
    torch.testing.assert_close(log_p.exp(), p)
    torch.testing.assert_close(log_q.exp(), 1 - p)
    g = torch.sigmoid(cg.bn(cg.proj(p)))
    lp, lq = cg(log_p, log_q)
    torch.testing.assert_close(lp.exp(), p * g)
    torch.testing.assert_close(lq.exp(), 1 - p * g)
    # extreme experts: logits stay finite and exact where probabilities round to 0 or 1
    with torch.no_grad():
        moe.experts.bias.fill_(-60.0)
    log_p, log_q = moe(x)
    assert (log_p - log_q).isfinite().all() and (log_p < -50).all()


def test_the_frame_models_gradients_in_float64():
    model = _small(moe="dc").double()
    model.train()
    x = torch.randn(3, 12, 1153, dtype=torch.float64)
    x[..., -1] = (torch.rand(3, 12) < 0.7).double()
    x[0, :3, -1] = 1.0
    head = torch.nn.Sequential(model.moe)
    h = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h: head[0](h)[0] - head[0](h)[1], (h,))
    out = model(x)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in model.parameters())


def test_bad_frame_model_arguments_are_one_line_errors():
    with pytest.raises(ValueError, match="dbof must be 'dense' or 'dc'"):
        _small(dbof="lowrank")
    with pytest.raises(ValueError, match="takes frames: input_shape"):
        YouTube8MFrameModel(1152, 30, input_shape=(1152,))
    with pytest.raises(ValueError, match="audio=True needs audio features"):
        YouTube8MFrameModel(4 * 1025, 30, input_shape=(4, 1025), audio=True)
